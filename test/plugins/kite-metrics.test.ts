import t from 'tap'
import Fastify from 'fastify'
import { Counter, Registry } from 'prom-client'
import { KiteClient } from '../../lib/client/client.js'
import { kiteError } from '../../lib/errors.js'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { kontrol } from '../../plugins/kontrol/index.js'
import { kontrolRegister } from '../../plugins/kontrol-register/index.js'
import { kiteMetrics, KiteMetrics } from '../../plugins/kite-metrics/index.js'
import { connectClient, startKite } from '../helpers/server.js'
import { eventually, startRegisteredKite } from '../helpers/kontrol.js'
import { RawPeer } from '../helpers/raw-peer.js'

/** One sample of the Prometheus text: `name{labels} value`, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1))
  }
  return undefined
}

async function scrape(base: string, path = '/metrics'): Promise<string> {
  const res = await fetch(`${base}${path}`)
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`)
  return res.text()
}

t.test('exact call and error counts, by method and kite error type, after a known sequence', async (t) => {
  const { base, url } = await startKite(t, {}, async (app) => {
    await app.register(kiteMetrics)
    app.kite.handle('slow', async () => {
      await new Promise((resolve) => setTimeout(resolve, 60))
      return 'late'
    }).disableAuthentication()
    app.kite.handle('secret', () => 'hidden') // needs credentials
    app.kite.handle('limited', () => {
      throw kiteError('KITE_ERR_REQUEST_LIMIT')
    }).disableAuthentication()
  })
  const client = await connectClient(t, url)
  for (const n of [1, 2, 3]) t.equal(await client.tell('square', n), n * n)
  await t.rejects(client.tell('square', 'x'), { name: 'KiteError', type: 'genericError' })
  await t.rejects(client.tell('square', null), { name: 'KiteError', type: 'genericError' })
  await t.rejects(client.tell('secret'), { name: 'KiteError', type: 'authenticationError' })
  await t.rejects(client.tell('limited'), { name: 'KiteError', type: 'requestLimitError' })
  await t.rejects(client.tell('nope'), { name: 'KiteError', type: 'methodNotFound' })
  t.equal(await client.tell('slow'), 'late')

  const res = await fetch(`${base}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await res.text()
  t.equal(sample(text, 'kite_calls_total{method="square"}'), 5, '5 calls to square')
  t.equal(sample(text, 'kite_call_errors_total{method="square",type="genericError"}'), 2, '2 of them failed (genericError)')
  t.equal(sample(text, 'kite_calls_total{method="secret"}'), 1)
  t.equal(sample(text, 'kite_call_errors_total{method="secret",type="authenticationError"}'), 1)
  t.equal(sample(text, 'kite_call_errors_total{method="limited",type="requestLimitError"}'), 1)
  t.equal(sample(text, 'kite_calls_total{method="slow"}'), 1)
  t.equal(sample(text, 'kite_call_errors_total{method="slow",type="genericError"}'), undefined, 'no error series for a method that never failed')
  t.notMatch(text, /method="nope"/, 'unknown methods make no series (no label explosion from callers)')
  // Histogram: every square call in a bucket; the 60 ms call above the 50 ms bound.
  t.equal(sample(text, 'kite_call_duration_seconds_count{method="square"}'), 5)
  t.equal(sample(text, 'kite_call_duration_seconds_bucket{le="+Inf",method="square"}'), 5)
  t.equal(sample(text, 'kite_call_duration_seconds_bucket{le="0.05",method="slow"}'), 0, 'slow (60 ms) is not under 50 ms')
  t.equal(sample(text, 'kite_call_duration_seconds_bucket{le="+Inf",method="slow"}'), 1)
  t.ok(sample(text, 'kite_call_duration_seconds_sum{method="slow"}')! >= 0.06, 'sum holds the 60 ms')
  t.equal(sample(text, 'kite_connections{transport="sockjs-websocket"}'), 1, 'one SockJS WebSocket peer')
})

t.test('client side: calls made through a KiteClient, by remote method and error type', async (t) => {
  const { url } = await startKite(t, {}, (app) => {
    app.kite.handle('never', () => new Promise(() => {})).disableAuthentication()
  })
  const metrics = new KiteMetrics()
  const client = await connectClient(t, url, { observer: metrics, transport: 'websocket' })
  t.equal(await client.tell('square', 3), 9)
  t.equal(await client.tell('square', 4), 16)
  await t.rejects(client.tell('square', 'x'), { name: 'KiteError', type: 'genericError' })
  await t.rejects(client.tell('nope'), { name: 'KiteError', type: 'methodNotFound' })
  await t.rejects(client.tellWithTimeout('never', 50), { name: 'KiteError', type: 'timeout' })
  const text = await metrics.metrics()
  t.equal(sample(text, 'kite_client_calls_total{method="square"}'), 3)
  t.equal(sample(text, 'kite_client_call_errors_total{method="square",type="genericError"}'), 1)
  t.equal(sample(text, 'kite_client_call_errors_total{method="nope",type="methodNotFound"}'), 1)
  t.equal(sample(text, 'kite_client_call_errors_total{method="never",type="timeout"}'), 1)
  t.equal(sample(text, 'kite_client_call_duration_seconds_count{method="square"}'), 3)
  t.equal(sample(text, 'kite_client_call_duration_seconds_bucket{le="0.025",method="never"}'), 0, 'the 50 ms timeout is above 25 ms')
  t.equal(sample(text, 'kite_client_call_duration_seconds_bucket{le="+Inf",method="never"}'), 1)
  t.equal(sample(text, 'kite_calls_total{method="square"}'), undefined, 'no server-side counts on a client')
})

t.test('connections by transport and callbacks held, read at scrape time', async (t) => {
  const { base, url } = await startKite(t, {}, async (app) => {
    await app.register(kiteMetrics)
    // Returns a function: the peer may call it until the connection closes.
    app.kite.handle('subscribe', () => ({ stop: () => 'stopped' })).disableAuthentication()
  })
  const a = await connectClient(t, url, { transport: 'websocket' })
  const b = await connectClient(t, url, { transport: 'websocket' })
  const c = await connectClient(t, url, { transport: 'xhr-polling' })
  await a.tell('subscribe')
  await a.tell('subscribe')
  await b.tell('subscribe')
  await c.tell('square', 2)
  let text = await scrape(base)
  const transports = [...text.matchAll(/^kite_connections\{transport="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])])
  t.same(Object.fromEntries(transports), { websocket: 2, 'sockjs-xhr': 1 }, 'two raw WebSocket peers and one XHR polling peer')
  t.equal(sample(text, 'kite_callbacks_held'), 3, 'three `stop` functions held for peers')
  await a.close()
  await eventually(async () => sample(await scrape(base), 'kite_callbacks_held') === 1, 5000)
  text = await scrape(base)
  t.equal(sample(text, 'kite_connections{transport="websocket"}'), 1, 'a closed peer is no longer counted')
})

t.test('an injected registry: the app\'s own metrics and the kite\'s on one endpoint; path option', async (t) => {
  const registry = new Registry()
  const mine = new Counter({ name: 'app_orders_total', help: 'orders', registers: [registry] })
  mine.inc(7)
  const { base, url, app } = await startKite(t, {}, async (app) => {
    await app.register(kiteMetrics, { registry, path: '/internal/metrics', prefix: 'math_' })
  })
  t.equal(app.kiteMetrics.registry, registry)
  const client = await connectClient(t, url)
  await client.tell('square', 2)
  const text = await scrape(base, '/internal/metrics')
  t.equal(sample(text, 'app_orders_total'), 7, 'the app\'s metric')
  t.equal(sample(text, 'math_calls_total{method="square"}'), 1, 'the kite\'s, with the prefix')
  t.equal((await fetch(`${base}/metrics`)).status, 404, 'no default route when another path is given')
})

t.test('bad options fail at register', async (t) => {
  for (const [name, opts] of [
    ['path without slash', { path: 'metrics' }],
    ['bad prefix', { prefix: 'kite-' }],
  ] as const) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(kiteServer, { name: 'x', version: '1.0.0' })
    await t.rejects(Promise.resolve(app.register(kiteMetrics, opts as never).ready()), TypeError, name)
  }
})

t.test('off: no observer installed, nothing watched', async (t) => {
  const { app } = await startKite(t)
  t.equal(app.kite.observer, null)
  t.equal(app.kite.methods.observer, null)
})

t.test('Kontrol: kites registered, registrations, getKites, tokens signed, heartbeats missed', async (t) => {
  const app = Fastify({ logger: false, return503OnClosing: false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'kontrol', version: '0.0.1', username: 'kontrol-owner', closeGraceMs: 200 })
  await app.register(kiteAuth, { kiteKey: false })
  await app.register(kiteMetrics)
  await app.register(kontrol, { storage: 'memory', heartbeatInterval: 1, heartbeatGrace: 1, sweepInterval: 100 })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const kiteKey = app.kontrol.service.issueKiteKey('alice')
  const math = await startRegisteredKite(t, app.kontrol.url, kiteKey, { name: 'math' })
  await startRegisteredKite(t, app.kontrol.url, kiteKey, { name: 'fs' })
  let text = await scrape(base)
  t.equal(sample(text, 'kite_kontrol_kites_registered'), 2)
  t.equal(sample(text, 'kite_kontrol_registrations_total'), 2)
  t.equal(sample(text, 'kite_kontrol_getkites_total'), 0)
  t.equal(sample(text, 'kite_kontrol_tokens_signed_total'), 0)

  const found = await math.app.kite.getKites({ username: 'alice', environment: 'test', name: 'fs' })
  t.equal(found.length, 1)
  await math.app.kite.getKites({ username: 'alice', environment: 'test', name: 'fs' })
  text = await scrape(base)
  t.equal(sample(text, 'kite_kontrol_getkites_total'), 2)
  t.equal(sample(text, 'kite_kontrol_tokens_signed_total'), 1, 'the second getKites got the cached token')
  t.equal(sample(text, 'kite_calls_total{method="getKites"}'), 2, 'and the calls themselves, as for any kite')

  // A kite that registers and then never pings: forgotten after interval + grace.
  const ghost = new KiteClient(`${app.kontrol.url.replace('http', 'ws')}`, {
    auth: { type: 'kiteKey', key: kiteKey },
    kite: { name: 'ghost', username: 'alice', environment: 'test' },
  })
  ghost.handle('kite.heartbeat', () => null) // answers, but never calls the ping callback
  t.teardown(() => ghost.close())
  await ghost.connect()
  await ghost.tell('register', { url: 'http://127.0.0.1:9/kite' })
  text = await scrape(base)
  t.equal(sample(text, 'kite_kontrol_kites_registered'), 3)
  t.equal(sample(text, 'kite_kontrol_registrations_total'), 3)
  // A kite with metrics finds fs through Kontrol: calls through the clients getKites hands out are counted.
  const caller = Fastify({ logger: false })
  t.teardown(() => caller.close())
  await caller.register(kiteServer, { name: 'caller', version: '1.0.0', environment: 'test', closeGraceMs: 200 })
  await caller.register(kiteAuth, { kiteKey })
  await caller.register(kontrolRegister, { kontrolURL: app.kontrol.url, kiteKey })
  await caller.register(kiteMetrics)
  const callerBase = await caller.listen({ port: 0, host: '127.0.0.1' })
  await caller.kontrolRegister.ready
  const [fs] = await caller.kite.getKites({ username: 'alice', environment: 'test', name: 'fs' })
  t.teardown(() => fs!.close())
  await fs!.connect()
  t.equal(await fs!.tell('square', 5), 25)
  await t.rejects(fs!.tell('nope'), { name: 'KiteError', type: 'methodNotFound' })
  const callerText = await scrape(callerBase)
  t.equal(sample(callerText, 'kite_client_calls_total{method="square"}'), 1, 'a call through a getKites client, counted on the caller')
  t.equal(sample(callerText, 'kite_client_call_errors_total{method="nope",type="methodNotFound"}'), 1)
  t.equal(sample(callerText, 'kite_client_calls_total{method="getKites"}'), 1, 'and the getKites call to Kontrol itself')

  await eventually(async () => sample(await scrape(base), 'kite_kontrol_heartbeats_missed_total') === 1, 10000)
  text = await scrape(base)
  t.equal(sample(text, 'kite_kontrol_kites_registered'), 3, 'the silent kite is no longer counted (math, fs, caller remain)')
})

t.test('bytes queued for a peer that does not read', async (t) => {
  const { base, url } = await startKite(t, { maxBufferedBytes: 64 * 1024 * 1024, backpressureGraceMs: 60000 }, async (app) => {
    await app.register(kiteMetrics)
    app.kite.handle('big', () => 'x'.repeat(1024 * 1024)).disableAuthentication()
  })
  t.equal(sample(await scrape(base), 'kite_bytes_queued'), 0, 'nothing queued at first')
  const peer = await RawPeer.open(url.replace('http', 'ws'))
  t.teardown(() => peer.ws.terminate())
  ;(peer.ws as unknown as { _socket: { pause(): void } })._socket.pause() // stops reading
  const kite = { name: 'raw', username: 'u', id: 'i', environment: 'e', region: 'r', version: '1.0.0', hostname: 'h' }
  for (let i = 0; i < 40; i++) {
    peer.send(JSON.stringify({ method: 'big', arguments: [{ kite, withArgs: [] }], callbacks: { [i]: [0, 'responseCallback'] } }))
  }
  // 40 MiB of answers: more than the socket buffers of the loopback hold, so part stays queued.
  let queued = 0
  await eventually(async () => {
    queued = sample(await scrape(base), 'kite_bytes_queued') ?? 0
    return queued > 1024 * 1024
  }, 20000)
  t.ok(queued > 1024 * 1024, `${queued} bytes queued for the peer that does not read`)
})

t.test('removeObserver: calls made while the metrics are off are not counted; added again, they count again', async (t) => {
  const { app, base, url } = await startKite(t, {}, async (app) => {
    await app.register(kiteMetrics)
  })
  const client = await connectClient(t, url, { transport: 'websocket' })
  const count = async (): Promise<number | undefined> => sample(await scrape(base), 'kite_calls_total{method="square"}')
  t.equal(await client.tell('square', 2), 4)
  t.equal(await count(), 1)
  t.equal(app.kite.removeObserver(app.kiteMetrics), true, 'removed')
  t.equal(app.kite.observer, null, 'nothing watches the kite any more')
  t.equal(await client.tell('square', 3), 9)
  t.equal(await count(), 1, 'a call made with the metrics off is not counted')
  t.equal(app.kite.removeObserver(app.kiteMetrics), false, 'removing it twice says it was not installed')
  app.kite.addObserver(app.kiteMetrics)
  t.equal(await client.tell('square', 4), 16)
  t.equal(await count(), 2, 'counted again on the open connection')
})
