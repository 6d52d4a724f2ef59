import t from 'tap'
import net from 'node:net'
import Fastify from 'fastify'
import { Backoff } from '../../lib/client/backoff.js'
import { KiteClient } from '../../lib/client/client.js'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { connectClient, once, startKite, TRANSPORTS } from '../helpers/server.js'
import { FakeTimers } from '../helpers/fake-timers.js'

for (const transport of TRANSPORTS) {
  t.test(`${transport}: when the connection drops, every pending call fails with disconnect at once`, async (t) => {
    let arrived = 0
    let allArrived: () => void
    const three = new Promise<void>((r) => (allArrived = r))
    // closeGraceMs: the server's close need not wait for calls that never end.
    const { app, url } = await startKite(t, { closeGraceMs: 1 }, (app) => {
      app.kite
        .handle('never', () => {
          if (++arrived === 3) allArrived()
          return new Promise(() => {})
        })
        .disableAuthentication()
    })
    const client = await connectClient(t, url, { transport, timeout: 0 })
    const calls = [client.tell('never'), client.tell('never'), client.tell('never')]
    await three
    const dropped = once(client, 'disconnect')
    for (const conn of app.kite.connections) conn.close(3000, 'Go away!')
    for (const call of calls) await t.rejects(call, { type: 'disconnect', message: 'Remote kite has disconnected' })
    await dropped
    await t.rejects(client.tell('square', 2), { type: 'sendError', message: "can't send, session is not established yet" })
  })
}

t.test('a call times out with a timeout error; a late answer is dropped', async (t) => {
  let release: (value: string) => void = () => {}
  const answer = new Promise<string>((r) => (release = r))
  const { url } = await startKite(t, {}, (app) => {
    app.kite.handle('slow', () => answer).disableAuthentication()
  })
  const timers = new FakeTimers()
  const client = await connectClient(t, url, { timeout: 5000, timers })
  const first = client.tellWithTimeout('slow', 50)
  const second = client.call('slow', [], { timeout: 50 })
  timers.advance(50)
  await t.rejects(first, { type: 'timeout', message: 'No response to "slow" method in 50ms' })
  await t.rejects(second, { name: 'KiteError', type: 'timeout' })
  release('late')
  // Answers come in order on one connection: the late ones arrive before this one's.
  t.equal(await client.tell('square', 3), 9, 'the connection is fine after late answers')
})

t.test('the callback registry frees response callbacks when answered and everything on disconnect', async (t) => {
  const { app, url } = await startKite(t)
  const client = await connectClient(t, url)
  await client.tell('square', 2)
  const seen: number[] = []
  await client.tell('count', 2, (i: number) => seen.push(i))
  const conn = (client as unknown as { conn: import('../../lib/connection/connection.js').KiteConnection }).conn
  t.equal(conn.pendingCalls, 0, 'no response callback is kept after its answer')
  t.equal(conn.callbackCount, 1, 'the user callback stays callable while connected')
  const gone = once(app.kite, 'disconnect')
  await client.close()
  await gone
  t.equal(conn.callbackCount, 0, 'everything is freed on disconnect')
})

t.test('reconnects with backoff after the connection drops, and after a server restart', async (t) => {
  const first = await startKite(t)
  const port = Number(new URL(first.url).port)
  const client = new KiteClient(first.url, { reconnect: true, backoff: { initialMs: 20, maxMs: 100 } })
  t.teardown(() => client.close())
  await client.connect()
  let reconnected = once<number>(client, 'reconnect')
  for (const conn of first.app.kite.connections) conn.close(3000, 'Go away!')
  t.equal(await reconnected, 1, 'reconnected on the first attempt')
  t.equal(await client.tell('square', 3), 9)

  reconnected = once<number>(client, 'reconnect')
  const failedOnce = once(client, 'error')
  await first.app.close()
  const again = Fastify()
  t.teardown(() => again.close())
  await again.register(kiteServer, { name: 'math', version: '1.0.1' })
  again.kite.handle('square', (req) => (req.args[0] as number) ** 2).disableAuthentication()
  await failedOnce
  await again.listen({ port, host: '127.0.0.1' })
  t.ok((await reconnected) >= 1, 'came back once the server was back')
  t.equal(await client.tell('square', 4), 16)
})

t.test('connect fails clearly: refused, and a server that never answers', async (t) => {
  const refused = new KiteClient('http://127.0.0.1:1/kite')
  await t.rejects(refused.connect(), { type: 'sendError', code: 'KITE_ERR_CONNECT_FAILED' })
  const silent = net.createServer(() => {})
  const sockets = new Set<net.Socket>()
  silent.on('connection', (s) => sockets.add(s))
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    silent.close()
  })
  const port = (silent.address() as net.AddressInfo).port
  for (const transport of TRANSPORTS) {
    const client = new KiteClient(`http://127.0.0.1:${port}/kite`, { transport, connectTimeout: 100 })
    await t.rejects(client.connect(), { type: 'timeout', code: 'KITE_ERR_CONNECT_TIMEOUT' }, transport)
    await client.close()
  }
})

t.test('a closed client refuses calls and connects', async (t) => {
  const { url } = await startKite(t)
  const client = await connectClient(t, url)
  await client.close()
  await client.close()
  await t.rejects(client.tell('square', 1), { type: 'sendError', message: "can't send, client is closed" })
  await t.rejects(client.connect(), { name: 'KiteError', type: 'sendError' })
})

t.test('backoff grows by the multiplier within ±randomization, up to the max, and resets', async (t) => {
  const mid = new Backoff({ random: () => 0.5 })
  t.same([mid.next(), mid.next(), mid.next()], [500, 750, 1125])
  const low = new Backoff({ random: () => 0, initialMs: 1000, maxMs: 2000 })
  t.same([low.next(), low.next(), low.next(), low.next()], [500, 750, 1000, 1000])
  low.reset()
  t.equal(low.next(), 500)
  const high = new Backoff({ random: () => 0.999999 })
  t.ok(high.next() <= 750)
  t.throws(() => new Backoff({ initialMs: 0 }), TypeError)
})

t.test('a "token is expired" answer fires tokenExpired; a new token needs no reconnect', async (t) => {
  const { app, url } = await startKite(t, {
    authenticators: {
      token: ({ authentication }) => {
        if (authentication.key !== 'fresh') throw new Error('token is expired')
        return { username: 'alice' }
      },
    },
  })
  app.kite.handle('secret', (req) => `hello ${req.username}`)
  const client = await connectClient(t, url, { auth: { type: 'token', key: 'stale' } })
  const expired = once(client, 'tokenExpired')
  await t.rejects(client.tell('secret'), { type: 'authenticationError', message: 'token: token is expired' })
  await expired
  client.auth = { type: 'token', key: 'fresh' }
  t.equal(await client.tell('secret'), 'hello alice')
})

t.test('invalid client options are refused at construction', async (t) => {
  t.throws(() => new KiteClient('ftp://x/kite'), TypeError)
  t.throws(() => new KiteClient('http://x/kite', { transport: 'carrier-pigeon' as never }), TypeError)
  t.throws(() => new KiteClient('http://x/kite', { kite: { version: '1' } }), TypeError)
  t.throws(() => new KiteClient('http://x/kite', { timers: { setTimeout } as never }), { option: 'timers', message: /must have setTimeout, clearTimeout, setInterval and clearInterval/ })
})

t.test('a connection this client closes itself (a message over its limits) is a disconnect, and reconnects', async (t) => {
  const { app, url } = await startKite(t)
  const client = new KiteClient(url, { limits: { maxMessageBytes: 1000 }, reconnect: true, backoff: { initialMs: 20, maxMs: 50 } })
  t.teardown(() => client.close())
  await client.connect()
  const dropped = once<string>(client, 'disconnect')
  const back = once(client, 'reconnect')
  const [conn] = app.kite.connections
  void conn!.tell('anything', ['x'.repeat(5000)]).catch(() => {})
  t.match(await dropped, /connection closed/)
  await back
  t.equal(await client.tell('square', 3), 9, 'reconnected')
})

t.test('callbacks inside a result are callable; results that cannot be encoded still get an answer', async (t) => {
  let pushed: (x: unknown) => void = () => {}
  const seen = new Promise<unknown>((r) => (pushed = r))
  const { url } = await startKite(t, {}, (app) => {
    app.kite.handle('subscribe', () => ({ push: (x: unknown) => pushed(x) })).disableAuthentication()
    app.kite.handle('big', () => 10n).disableAuthentication()
    app.kite.handle('bigAsync', async () => 10n).disableAuthentication()
  })
  const client = await connectClient(t, url)
  const result = (await client.tell('subscribe')) as { push: (x: unknown) => void }
  t.type(result.push, 'function')
  result.push(42)
  t.equal(await seen, 42, 'the server received the call through the callback in its own result')
  await t.rejects(client.tell('big'), { type: 'genericError', message: /cannot encode result/ })
  await t.rejects(client.tell('bigAsync'), { type: 'genericError', message: /cannot encode result/ })
})

t.test('a peer that goes silent (no frames, no pongs) is dropped after the idle timeout', async (t) => {
  const { WebSocketServer } = await import('ws')
  const silent = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: false })
  t.teardown(() => {
    for (const c of silent.clients) c.terminate()
    silent.close()
  })
  await new Promise((r) => silent.once('listening', r))
  const port = (silent.address() as { port: number }).port
  const client = new KiteClient(`ws://127.0.0.1:${port}/kite`, { idleTimeout: 300, timeout: 0 })
  t.teardown(() => client.close())
  await client.connect()
  const pending = client.tell('anything')
  const reason = await once<string>(client, 'disconnect')
  t.match(reason, /no data from the peer/)
  await t.rejects(pending, { name: 'KiteError', type: 'disconnect' }, 'a call with no timeout does not hang')
})

t.test('kite.heartbeat intervals are bounded both ways', async (t) => {
  const { heartbeat, MAX_HEARTBEAT_SECONDS } = await import('../../lib/methods/builtins.js')
  let set: number | null = null
  const fakeReq = { args: [3e6, () => {}], connection: { setHeartbeat: (ms: number) => (set = ms) } } as never
  heartbeat(fakeReq)
  t.equal(set, MAX_HEARTBEAT_SECONDS * 1000, 'a huge interval is capped (Node would otherwise fire every millisecond)')
  heartbeat({ args: [0.001, () => {}], connection: { setHeartbeat: (ms: number) => (set = ms) } } as never)
  t.equal(set, 1000, 'a tiny one is raised to 1 s')
})

t.test('long timeouts (checked by the per-connection sweep) fire too, and only for the calls that are late', async (t) => {
  const { url } = await startKite(t, { closeGraceMs: 1 }, (app) => {
    app.kite.handle('never', () => new Promise(() => {})).disableAuthentication()
  })
  const timers = new FakeTimers()
  const client = await connectClient(t, url, { timers })
  const late = client.tellWithTimeout('never', 2000)
  const fine = client.tellWithTimeout('square', 2000, 5)
  t.equal(await fine, 25)
  let failed = false
  late.catch(() => (failed = true))
  timers.advance(1999)
  await new Promise((r) => setImmediate(r))
  t.notOk(failed, 'not before its 2000 ms')
  timers.advance(500)
  await t.rejects(late, { type: 'timeout', message: 'No response to "never" method in 2000ms' })
})

t.test('transport auto: SockJS WebSocket, falling back to XHR polling only when the upgrade is refused', async (t) => {
  const http = await import('node:http')
  const { app, url } = await startKite(t)
  const target = new URL(url)
  // A front that refuses WebSocket upgrades (as some proxies do) and forwards plain HTTP.
  const front = http.createServer((req, res) => {
    const upstream = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    req.pipe(upstream)
  })
  front.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'))
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    front.closeAllConnections()
    front.close()
  })
  const ok = await connectClient(t, url, { transport: 'auto' })
  t.equal(await ok.tell('square', 2), 4)
  t.equal([...app.kite.connections].at(-1)!.transport, 'sockjs-websocket', 'WebSocket when it works')
  const port = (front.address() as { port: number }).port
  const strict = new KiteClient(`http://127.0.0.1:${port}/kite`, { transport: 'sockjs' })
  await t.rejects(strict.connect(), { code: 'KITE_ERR_CONNECT_FAILED', message: /Unexpected server response: 404/ }, 'without auto, a refused upgrade fails the dial')
  const fallback = await connectClient(t, `http://127.0.0.1:${port}/kite`, { transport: 'auto' })
  t.equal(await fallback.tell('square', 3), 9)
  t.equal([...app.kite.connections].at(-1)!.transport, 'sockjs-xhr', 'XHR polling when the upgrade is refused')
  const refused = new KiteClient('http://127.0.0.1:1/kite', { transport: 'auto', connectTimeout: 3000 })
  const err = await refused.connect().catch((e: unknown) => e)
  t.match(err, { code: 'KITE_ERR_CONNECT_FAILED' }, 'a refused connection is not a reason to fall back')
})

t.test('a dial the server refuses fails with KITE_ERR_CONNECT_FAILED, saying why', async (t) => {
  const http = await import('node:http')
  const { WebSocketServer } = await import('ws')
  // On WebSocket: close at once (no SockJS open frame) or send a SockJS close frame; on XHR: a close frame, or 500.
  const server = http.createServer((req, res) => {
    if (req.url?.includes('/shut/')) res.end('c[3000,"Go away!"]\n')
    else res.writeHead(500).end()
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => {
    if (req.url?.includes('/shut/')) ws.send('c[3000,"Go away!"]')
    else ws.close()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const c of wss.clients) c.terminate()
    server.closeAllConnections()
    server.close()
  })
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const cases: Array<[string, 'sockjs' | 'xhr-polling', RegExp]> = [
    ['/shut', 'sockjs', /SockJS session did not open: closed by server: code=3000, reason=Go away!/],
    ['/quiet', 'sockjs', /connection closed \(1005\)/],
    ['/shut', 'xhr-polling', /SockJS session did not open: closed by server: code=3000, reason=Go away!/],
    ['/quiet', 'xhr-polling', /SockJS session did not open: status 500/],
  ]
  for (const [path, transport, message] of cases) {
    const client = new KiteClient(`${base}${path}`, { transport })
    await t.rejects(client.connect(), { name: 'KiteError', code: 'KITE_ERR_CONNECT_FAILED', message }, `${transport} ${path}`)
    await client.close()
  }
  // A port that was just free: nothing listens there.
  const gone = http.createServer()
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r))
  const gonePort = (gone.address() as { port: number }).port
  await new Promise((r) => gone.close(r))
  const refused = new KiteClient(`http://127.0.0.1:${gonePort}/kite`, { transport: 'xhr-polling' })
  await t.rejects(refused.connect(), { code: 'KITE_ERR_CONNECT_FAILED', message: /fetch failed: connect ECONNREFUSED/ }, 'XHR polling says why fetch failed')
})

t.test('arguments nested too deeply (or cyclic) fail the call with KITE_ERR_SEND_TOO_DEEP; the connection stays', async (t) => {
  const { url } = await startKite(t)
  const client = await connectClient(t, url, { transport: 'websocket' })
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  await t.rejects(client.tell('square', cyclic), { name: 'KiteError', code: 'KITE_ERR_SEND_TOO_DEEP', type: 'sendError' })
  t.equal(await client.tell('square', 5), 25)
})

t.test('a transport that is not open refuses to send with KITE_ERR_TRANSPORT_NOT_OPEN', async (t) => {
  const { RawWebSocketTransport, SockjsWebSocketTransport } = await import('../../lib/client/transports/websocket.js')
  const { XhrPollingTransport } = await import('../../lib/client/transports/xhr.js')
  const events = { message: () => {}, close: () => {} }
  const options = { maxPayload: 1024, idleTimeoutMs: 0, backpressure: { maxBufferedBytes: 1024, graceMs: 1000 } }
  const url = new URL('http://127.0.0.1:1/kite')
  for (const transport of [new RawWebSocketTransport(url, events, options), new SockjsWebSocketTransport(url, events, options)]) {
    t.throws(() => transport.send('{}'), { name: 'KiteError', code: 'KITE_ERR_TRANSPORT_NOT_OPEN', message: 'the WebSocket is not open' })
  }
  const xhr = new XhrPollingTransport(url, events, options.backpressure)
  xhr.close()
  t.throws(() => xhr.send('{}'), { code: 'KITE_ERR_TRANSPORT_NOT_OPEN', message: 'the XHR session is not open' })
})
