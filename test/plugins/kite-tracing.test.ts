import t from 'tap'
import Fastify from 'fastify'
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { KiteClient } from '../../lib/client/client.js'
import { kiteError } from '../../lib/errors.js'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { kiteTracing, kiteTracer, formatTraceCarrier, parseTraceCarrier } from '../../plugins/kite-tracing/index.js'
import { RawPeer } from '../helpers/raw-peer.js'
import { connectClient, startKite } from '../helpers/server.js'
import { parentOf, recordSpans } from '../helpers/tracing.js'

t.test('a trace across two kites over real sockets: client → A → (inside the handler) B', async (t) => {
  const rec = recordSpans()
  const b = await startKite(t, { name: 'kite-b' }, async (app) => {
    await app.register(kiteTracing, { tracer: rec.tracer })
  })
  let toB: KiteClient | null = null
  const a = await startKite(t, { name: 'kite-a' }, async (app) => {
    await app.register(kiteTracing, { tracer: rec.tracer })
    app.kite.handle('squareViaB', async (req) => {
      await new Promise((resolve) => setImmediate(resolve)) // the trace must survive an await
      return toB!.tell('square', req.args[0])
    }).disableAuthentication()
  })
  // A's client to B carries A's observer, as the KiteClients `app.kite.getKites` hands out do.
  toB = await connectClient(t, b.url, { observer: a.app.kite.observer, kite: { name: 'kite-a' } })
  const client = await connectClient(t, a.url, { transport: 'websocket', observer: kiteTracer({ tracer: rec.tracer }), kite: { name: 'caller' } })
  t.equal(await client.tell('squareViaB', 7), 49)

  const spans = rec.spans()
  t.equal(spans.length, 4, 'four spans: caller client, A server, A client, B server')
  const [callerSpan] = spans.filter((s) => s.kind === SpanKind.CLIENT && s.name === 'kite squareViaB')
  const [aServer] = spans.filter((s) => s.kind === SpanKind.SERVER && s.name === 'kite squareViaB')
  const [aClient] = spans.filter((s) => s.kind === SpanKind.CLIENT && s.name === 'kite square')
  const [bServer] = spans.filter((s) => s.kind === SpanKind.SERVER && s.name === 'kite square')
  t.ok(callerSpan && aServer && aClient && bServer, 'each span found')
  const traceId = callerSpan!.spanContext().traceId
  for (const s of spans) t.equal(s.spanContext().traceId, traceId, `${s.name} (${SpanKind[s.kind]}) is in the one trace`)
  t.equal(parentOf(callerSpan!), undefined, 'the caller span is the root')
  t.equal(parentOf(aServer!), callerSpan!.spanContext().spanId, 'A server span: child of the caller span (context crossed the socket)')
  t.equal(parentOf(aClient!), aServer!.spanContext().spanId, 'the call made in the handler: child of A server span')
  t.equal(parentOf(bServer!), aClient!.spanContext().spanId, 'B server span: child of A client span')
  t.match(aServer!.attributes, { 'rpc.system': 'kite', 'rpc.method': 'squareViaB', 'kite.caller.name': 'caller', 'kite.transport': 'websocket' })
  t.match(bServer!.attributes, { 'rpc.method': 'square', 'kite.caller.name': 'kite-a', 'kite.transport': 'sockjs' })
  for (const s of spans) t.equal(s.status.code, SpanStatusCode.OK, `${s.name} ${SpanKind[s.kind]} ok`)
})

t.test('a failed call: error status and the kite error type on both spans', async (t) => {
  const rec = recordSpans()
  const { url } = await startKite(t, {}, async (app) => {
    await app.register(kiteTracing, { tracer: rec.tracer })
    app.kite.handle('limited', () => {
      throw kiteError('KITE_ERR_REQUEST_LIMIT')
    }).disableAuthentication()
  })
  const client = await connectClient(t, url, { observer: kiteTracer({ tracer: rec.tracer }) })
  await t.rejects(client.tell('square', 'four'), { name: 'KiteError', type: 'genericError' })
  await t.rejects(client.tell('limited'), { name: 'KiteError', type: 'requestLimitError' })
  await t.rejects(client.tell('nope'), { name: 'KiteError', type: 'methodNotFound' })
  const spans = rec.spans()
  const server = spans.filter((s) => s.kind === SpanKind.SERVER)
  const client_ = spans.filter((s) => s.kind === SpanKind.CLIENT)
  t.equal(server.length, 2, 'a server span per call to a known method')
  t.equal(client_.length, 3, 'a client span per call')
  t.match(server[0], { name: 'kite square', status: { code: SpanStatusCode.ERROR, message: 'square needs a number' }, attributes: { 'error.type': 'genericError' } })
  t.match(server[1], { name: 'kite limited', status: { code: SpanStatusCode.ERROR }, attributes: { 'error.type': 'requestLimitError' } })
  t.match(client_[2], { name: 'kite nope', status: { code: SpanStatusCode.ERROR }, attributes: { 'error.type': 'methodNotFound' } })
  t.equal(parentOf(server[0]!), client_[0]!.spanContext().spanId)
})

t.test('the trace context travels in the envelope field traceContext; bad context starts a new trace', async (t) => {
  const rec = recordSpans()
  const { url } = await startKite(t, {}, async (app) => {
    await app.register(kiteTracing, { tracer: rec.tracer })
  })
  const peer = await RawPeer.open(url.replace('http', 'ws'))
  t.teardown(() => peer.close())
  const call = (id: number, traceContext: unknown) =>
    JSON.stringify({ method: 'square', arguments: [{ kite: { name: 'raw', username: 'u', id: 'i', environment: 'e', region: 'r', version: '1.0.0', hostname: 'h' }, authentication: null, traceContext, withArgs: [3] }], callbacks: { [id]: [0, 'responseCallback'] } })
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const parent = '00f067aa0ba902b7'
  peer.send(call(1, { traceparent: `00-${traceId}-${parent}-01`, tracestate: 'vendor=x' }))
  await peer.waitFor((f) => f.includes('"method":1'))
  for (const [i, bad] of [[2, { traceparent: 'garbage' }], [3, { traceparent: `00-${'0'.repeat(32)}-${parent}-01` }], [4, 'a string'], [5, { traceparent: 42 }]] as const) {
    peer.send(call(i, bad))
    const reply = await peer.waitFor((f) => f.includes(`"method":${i}`))
    t.match(reply, /"result":9/, `answered despite bad trace context ${JSON.stringify(bad)}`)
  }
  const spans = rec.spans()
  t.equal(spans.length, 5)
  t.equal(spans[0]!.spanContext().traceId, traceId, 'continues the caller\'s trace')
  t.equal(parentOf(spans[0]!), parent, 'child of the caller\'s span')
  t.equal(spans[0]!.spanContext().traceState?.get('vendor'), 'x', 'tracestate kept')
  for (const s of spans.slice(1)) {
    t.not(s.spanContext().traceId, traceId)
    t.equal(parentOf(s), undefined, 'bad context: a new root span')
  }
})

t.test('the client writes traceContext into the envelope (and nothing without an SDK)', async (t) => {
  const rec = recordSpans()
  const envelopes: Array<Record<string, unknown>> = []
  const { url } = await startKite(t, {}, (app) => {
    app.kite.preHandle(() => {})
    app.kite.on('connect', (conn) => {
      const receive = conn.receive.bind(conn)
      conn.receive = (text: string) => {
        const m = JSON.parse(text) as { method: unknown; arguments: Array<Record<string, unknown>> }
        if (m.method === 'square') envelopes.push(m.arguments[0]!)
        receive(text)
      }
    })
  })
  const traced = await connectClient(t, url, { observer: kiteTracer({ tracer: rec.tracer }) })
  t.equal(await traced.tell('square', 2), 4)
  // No SDK registered globally: the API's no-op tracer makes no trace context to send.
  const noop = await connectClient(t, url, { observer: kiteTracer() })
  t.equal(await noop.tell('square', 3), 9)
  t.equal(envelopes.length, 2)
  const sent = envelopes[0]!.traceContext as { traceparent: string }
  const span = rec.spans()[0]!
  t.same(sent, { traceparent: `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01` }, 'W3C traceparent of the client span')
  t.same(Object.keys(envelopes[0]!), ['traceContext', 'kite', 'authentication', 'responseCallback', 'withArgs'])
  t.notOk('traceContext' in envelopes[1]!, 'no-op tracer: no field')
})

t.test('W3C traceparent parse and format', async (t) => {
  const sc = parseTraceCarrier({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'a=1,b=2' })
  t.match(sc, { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true })
  t.same(formatTraceCarrier(sc!), { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'a=1,b=2' })
  t.equal(parseTraceCarrier({ traceparent: 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }), null, 'version ff is invalid')
  t.equal(parseTraceCarrier({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01' }), null, 'zero span id')
  t.equal(parseTraceCarrier({ traceparent: '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01' }), null, 'upper case')
  t.equal(parseTraceCarrier({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra' }), null, 'version 00 has no more fields')
  t.ok(parseTraceCarrier({ traceparent: '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra' }), 'a later version may add fields')
})

t.test('an HTTP route calling a kite: the Fastify HTTP span (@fastify/otel) and the kite spans share the trace', async (t) => {
  const rec = recordSpans()
  const kiteB = await startKite(t, { name: 'kite-b' }, async (app) => {
    await app.register(kiteTracing, { tracer: rec.tracer })
  })
  const otel = new FastifyOtelInstrumentation({ servername: 'front' } as ConstructorParameters<typeof FastifyOtelInstrumentation>[0])
  otel.setTracerProvider(rec.provider)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(otel.plugin())
  await app.register(kiteServer, { name: 'front', version: '1.0.0' })
  await app.register(kiteTracing, { tracer: rec.tracer })
  const toB = new KiteClient(kiteB.url, { observer: app.kite.observer })
  t.teardown(() => toB.close())
  app.get('/square/:n', async (req) => ({ result: await toB.tell('square', Number((req.params as { n: string }).n)) }))
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  await toB.connect()
  const res = await fetch(`${base}/square/6`)
  t.same(await res.json(), { result: 36 })
  await app.close()
  const spans = rec.spans()
  const http = spans.find((s) => s.kind === SpanKind.SERVER && s.instrumentationScope.name === '@fastify/otel')
  const kiteClient = spans.find((s) => s.kind === SpanKind.CLIENT && s.name === 'kite square')
  const kiteServerSpan = spans.find((s) => s.kind === SpanKind.SERVER && s.name === 'kite square')
  t.ok(http, `an HTTP span from @fastify/otel (${spans.map((s) => s.name).join(', ')})`)
  t.ok(kiteClient && kiteServerSpan)
  t.equal(kiteClient!.spanContext().traceId, http!.spanContext().traceId, 'the kite client span is in the HTTP request\'s trace')
  t.equal(kiteServerSpan!.spanContext().traceId, http!.spanContext().traceId, 'and so is the remote kite\'s server span')
  t.equal(trace.getSpan(context.active()), undefined, 'no span leaks into the test\'s context')
})

t.test('a kite with tracing on but no SDK records nothing and passes the caller\'s trace context on', async (t) => {
  const rec = recordSpans()
  const b = await startKite(t, { name: 'kite-b' }, async (app) => {
    await app.register(kiteTracing, { tracer: rec.tracer })
  })
  let toB: KiteClient | null = null
  const a = await startKite(t, { name: 'kite-a' }, async (app) => {
    await app.register(kiteTracing) // the global API, no SDK registered: no-op
    app.kite.handle('squareViaB', async (req) => {
      await new Promise((resolve) => setImmediate(resolve))
      return toB!.tell('square', req.args[0])
    }).disableAuthentication()
  })
  toB = await connectClient(t, b.url, { observer: a.app.kite.observer })
  const client = await connectClient(t, a.url, { observer: kiteTracer({ tracer: rec.tracer }) })
  t.equal(await client.tell('squareViaB', 3), 9)
  const spans = rec.spans()
  t.same(spans.map((s) => `${s.name} ${SpanKind[s.kind]}`).sort(), ['kite square SERVER', 'kite squareViaB CLIENT'], 'kite A records nothing')
  const callerSpan = spans.find((s) => s.kind === SpanKind.CLIENT)!
  const bServer = spans.find((s) => s.kind === SpanKind.SERVER)!
  t.equal(bServer.spanContext().traceId, callerSpan.spanContext().traceId, 'B continues the caller\'s trace through A')
  t.equal(parentOf(bServer), callerSpan.spanContext().spanId, 'B\'s span is a child of the caller\'s span')
})
