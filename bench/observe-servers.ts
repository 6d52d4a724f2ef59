import { parentPort, workerData } from 'node:worker_threads'
import Fastify, { type FastifyInstance } from 'fastify'
import { context } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { DropExporter } from './drop-exporter.js'
import { kiteServer } from '../plugins/kite-server/index.js'
import { kiteMetrics } from '../plugins/kite-metrics/index.js'
import { kiteTracing, kiteTracer } from '../plugins/kite-tracing/index.js'
import type { KiteObserver } from '../lib/observe/observer.js'

/**
 * Kites for the observability bench, in a worker thread.
 *
 * `plain` mode: one kite with kiteMetrics registered, whose observers the
 * parent switches between slices (message `{ observe: 'off' | 'metrics' | 'noop' }`,
 * answered `'ok'`): nothing installed, kiteMetrics' observer, or a kiteTracer
 * with no SDK (the API's no-op tracer, as the kiteTracing plugin installs it).
 * One kite and one connection for the three, so the ratios hold no difference
 * between kites or sockets (two identical kites differ by a few percent).
 *
 * `sdk` mode (its own worker, since an SDK's context manager is process-wide):
 * one kite with kiteTracing on an SDK (AsyncLocalStorage context manager,
 * SimpleSpanProcessor, an exporter that drops spans).
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
let observers: Record<string, KiteObserver | null> = {}
let switchable: FastifyInstance | null = null
if (workerData === 'sdk') {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new DropExporter())] })
  const sdk = await start(async (app) => {
    await app.register(kiteTracing, { tracer: provider.getTracer('bench') })
  })
  apps.push(sdk.app)
  urls.sdk = sdk.url
} else {
  const kite = await start(async (app) => {
    await app.register(kiteMetrics)
  })
  switchable = kite.app
  observers = { off: null, metrics: kite.app.kiteMetrics, noop: kiteTracer() }
  apps.push(kite.app)
  urls.kite = kite.url
}
parentPort!.postMessage(urls)
parentPort!.on('message', async (m: 'stop' | { observe: string }) => {
  if (m === 'stop') {
    for (const app of apps) await app.close()
    process.exit(0)
  }
  const kite = switchable!.kite
  for (const o of Object.values(observers)) if (o !== null) kite.removeObserver(o)
  const wanted = observers[m.observe]
  if (wanted === undefined) throw new Error(`no observer ${m.observe}`)
  if (wanted !== null) kite.addObserver(wanted)
  parentPort!.postMessage('ok')
})
