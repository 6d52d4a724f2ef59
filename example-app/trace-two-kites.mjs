// A trace across two kites, recorded in memory: node example-app/trace-two-kites.mjs (after npm run build)
import Fastify from 'fastify'
import { context } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { kiteServer, kiteTracing, kiteTracer, KiteClient } from '../dist/index.js'

// The app's SDK: a context manager (so calls made in a handler continue its trace) and a tracer.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
const exporter = new InMemorySpanExporter()
const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('demo')

async function kite(name, setup) {
  const app = Fastify()
  await app.register(kiteServer, { name, version: '1.0.0' })
  await app.register(kiteTracing, { tracer })
  await setup(app)
  return { app, url: `${await app.listen({ port: 0, host: '127.0.0.1' })}/kite` }
}

const square = await kite('square', (app) => {
  app.kite.handle('square', (req) => req.args[0] ** 2).disableAuthentication()
})
const front = await kite('front', (app) => {
  // Calls made through a client carrying the kite's observer continue the trace.
  const toSquare = new KiteClient(square.url, { observer: app.kite.observer, kite: { name: 'front' } })
  app.addHook('onClose', () => toSquare.close())
  app.kite.handle('sumOfSquares', async (req) => {
    await toSquare.connect()
    let sum = 0
    for (const n of req.args) sum += await toSquare.tell('square', n)
    return sum
  }).disableAuthentication()
})

const caller = new KiteClient(front.url, { observer: kiteTracer({ tracer }), kite: { name: 'caller' } })
await caller.connect()
console.log('sumOfSquares(1, 2) =', await caller.tell('sumOfSquares', 1, 2))
await caller.close()
await front.app.close()
await square.app.close()

// Print the trace as a tree: every span with its children under it.
const spans = exporter.getFinishedSpans()
const print = (parentId, indent) => {
  for (const s of spans.filter((s) => s.parentSpanContext?.spanId === parentId)) {
    const caller = s.attributes['kite.caller.name'] ? ` (caller: ${s.attributes['kite.caller.name']})` : ''
    console.log(`${indent}${s.name} ${s.kind === 1 ? 'SERVER' : 'CLIENT'} trace ${s.spanContext().traceId}${caller}`)
    print(s.spanContext().spanId, `${indent}  `)
  }
}
print(undefined, '')
