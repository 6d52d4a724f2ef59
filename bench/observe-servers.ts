import { parentPort, workerData } from 'node:worker_threads'
import Fastify, { type FastifyInstance } from 'fastify'
import { context } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { DropExporter } from './drop-exporter.js'
import { kiteServer } from '../plugins/kite-server/index.js'
import { kiteMetrics } from '../plugins/kite-metrics/index.js'
import { kiteTracing } from '../plugins/kite-tracing/index.js'

/**
 * Kites for the observability bench, in a worker thread. `plain` mode: one kite
 * with nothing installed (twice: the second is an A/A control), one with kiteMetrics, one with kiteTracing and no SDK
 * (the API's no-op tracer). `sdk` mode (its own worker, since an SDK's context
 * manager is process-wide): one kite with kiteTracing on an SDK
 * (AsyncLocalStorage context manager, SimpleSpanProcessor, an exporter that drops spans).
 */
async function start(setup: (app: FastifyInstance) => Promise<void>): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false })
  await app.register(kiteServer, { name: 'math', version: '1.0.0' })
  await setup(app)
  app.kite.handle('square', (req) => (req.args[0] as number) ** 2).disableAuthentication()
  return { app, url: `${await app.listen({ port: 0, host: '127.0.0.1' })}/kite` }
}

const apps: FastifyInstance[] = []
const urls: Record<string, string> = {}
if (workerData === 'sdk') {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new DropExporter())] })
  const sdk = await start(async (app) => {
    await app.register(kiteTracing, { tracer: provider.getTracer('bench') })
  })
  apps.push(sdk.app)
  urls.sdk = sdk.url
} else {
  const off = await start(async () => {})
  const off2 = await start(async () => {})
  const metrics = await start(async (app) => {
    await app.register(kiteMetrics)
  })
  const noop = await start(async (app) => {
    await app.register(kiteTracing)
  })
  apps.push(off.app, off2.app, metrics.app, noop.app)
  Object.assign(urls, { off: off.url, off2: off2.url, metrics: metrics.url, noop: noop.url })
}
parentPort!.postMessage(urls)
parentPort!.on('message', async (m) => {
  if (m === 'stop') {
    for (const app of apps) await app.close()
    process.exit(0)
  }
})
