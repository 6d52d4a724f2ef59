import t from 'tap'
import { once } from 'node:events'
import { createHash } from 'node:crypto'
import net from 'node:net'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { kiteServer, type KiteServerOptions } from '../../plugins/kite-server/index.js'
import { KiteClient } from '../../lib/client/client.js'
import type { KiteError } from '../../lib/errors.js'
import { RawPeer, call, pingCall } from '../helpers/raw-peer.js'

interface Line {
  level: number
  msg: string
  [key: string]: unknown
}

/** A kite whose log lines (debug and up) are kept in `lines`, with a clock the test moves. */
async function loggedKite(t: Tap.Test, options: Partial<KiteServerOptions> = {}): Promise<{ app: FastifyInstance; url: string; lines: Line[]; clock: { now: number } }> {
  const lines: Line[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const text of chunk.toString().split('\n')) if (text !== '') lines.push(JSON.parse(text) as Line)
      done()
    },
  })
  const clock = { now: 1_000_000 }
  const app = Fastify({ logger: { level: 'debug', stream } })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'abuse', version: '1.0.0', clock: () => clock.now, ...options })
  app.kite.handle('square', (req) => (req.args[0] as number) ** 2).disableAuthentication()
  app.kite.handle('secret', () => 'secret')
  app.kite.handle('giveFunction', () => ({ later: () => 'called' })).disableAuthentication()
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url: `${base}/kite`, lines, clock }
}

const warns = (lines: Line[], msg: string) => lines.filter((l) => l.level === 40 && l.msg === msg)

t.test('1,000 oversized frames: one warn line per peer per interval, the rest at debug and counted', async (t) => {
  const { url, lines, clock } = await loggedKite(t, { limits: { maxMessageBytes: 1024 } })
  const big = JSON.stringify({ method: 'square', arguments: ['x'.repeat(2000)], callbacks: {} })
  const wsUrl = url.replace('http', 'ws')
  const codes = new Map<number, number>()
  for (let i = 0; i < 1000; i++) {
    const peer = await RawPeer.open(wsUrl)
    peer.send(big)
    const code = await peer.closed
    codes.set(code, (codes.get(code) ?? 0) + 1)
  }
  t.same([...codes], [[1009, 1000]], 'each oversized frame closed its connection with 1009')
  const bad = 'closing connection: bad message'
  t.equal(warns(lines, bad).length, 1, 'one warn line for 1,000 oversized frames from one address')
  t.equal(lines.filter((l) => l.level === 20 && l.msg === bad).length, 999, 'the other 999 at debug')
  t.notOk(lines.some((l) => l.level >= 50), 'nothing at error level')
  t.notOk(lines.some((l) => l.msg === bad && 'stack' in l), 'no stack trace')
  clock.now += 10_000
  const peer = await RawPeer.open(wsUrl)
  peer.send(big)
  await peer.closed
  const second = warns(lines, bad)
  t.equal(second.length, 2, 'a new interval, a new warn line')
  t.equal(second[1]!.suppressed, 999, 'it counts the suppressed ones')
  // Frames over the WebSocket payload limit are refused by ws itself, also with 1009.
  const huge = await RawPeer.open(wsUrl)
  huge.send('x'.repeat(10_000))
  t.equal(await huge.closed, 1009)
  t.notOk(lines.some((l) => l.level >= 40 && /WebSocket error/.test(l.msg)), 'the ws-level refusal is a debug line')
})

t.test('handshake timeout: a socket that sends no request, or its headers too slowly, is dropped', async (t) => {
  const { app, url, lines } = await loggedKite(t, { handshakeTimeoutMs: 300 })
  const { port } = new URL(url)
  const silent = net.connect(Number(port), '127.0.0.1')
  await once(silent, 'connect')
  const slow = net.connect(Number(port), '127.0.0.1')
  await once(slow, 'connect')
  slow.write('GET /kite HTTP/1.1\r\nHost: x\r\n')
  const started = Date.now()
  await Promise.all([once(silent, 'close'), once(slow, 'close')])
  const took = Date.now() - started
  t.ok(took >= 250 && took < 5000, `both dropped after ${took} ms (timeout 300 ms)`)
  t.ok(warns(lines, 'dropped a connection that sent no request in time').length >= 1, 'a warn line')
  // A peer that completed its upgrade stays, past the timeout.
  const client = new KiteClient(url, { transport: 'websocket' })
  await client.connect()
  t.teardown(() => client.close())
  await new Promise((r) => setTimeout(r, 600))
  t.equal(await client.tell('square', 3), 9, 'an upgraded connection is not touched')
  t.ok(app.kite.connections.size >= 1)
})

t.test('an unauthenticated connection with no successful call for idleTimeoutMs is closed; others stay', async (t) => {
  const { app, url } = await loggedKite(t, { clock: Date.now, idleTimeoutMs: 200, authenticators: { custom: () => ({ username: 'bob' }) } })
  const wsUrl = url.replace('http', 'ws')
  const idle = await RawPeer.open(wsUrl)
  const authed = await RawPeer.open(wsUrl)
  authed.send(JSON.stringify({ method: 'secret', arguments: [{ kite: null, authentication: { type: 'custom', key: 'k' }, responseCallback: '[Function]', withArgs: [] }], callbacks: { 0: [0, 'responseCallback'] } }))
  await authed.waitFor((f) => f.includes('"result":"secret"'))
  const pinging = await RawPeer.open(wsUrl)
  let n = 0
  const timer = setInterval(() => pinging.send(pingCall(n++)), 40)
  t.teardown(() => clearInterval(timer))
  const started = Date.now()
  t.equal(await idle.closed, 1008, 'the idle unauthenticated connection is closed with 1008')
  t.equal(idle.closeReason, 'idle: no successful call')
  t.ok(Date.now() - started < 3000)
  await new Promise((r) => setTimeout(r, 500))
  clearInterval(timer)
  t.equal(authed.closeCode, null, 'an authenticated connection stays')
  t.equal(pinging.closeCode, null, 'a connection making successful calls stays')
  t.equal(app.kite.connections.size, 2)
})

t.test('authentication failures: the connection is closed after maxAuthFailures within the window', async (t) => {
  const { url, lines } = await loggedKite(t, { maxAuthFailures: 5, authFailureWindowMs: 60_000, authenticators: { token: () => { throw new Error('forged') } } })
  const peer = await RawPeer.open(url.replace('http', 'ws'))
  const forged = (id: number) => JSON.stringify({ method: 'secret', arguments: [{ kite: null, authentication: { type: 'token', key: 'forged' }, responseCallback: '[Function]', withArgs: [] }], callbacks: { [id]: [0, 'responseCallback'] } })
  for (let i = 0; i < 8; i++) peer.send(forged(i))
  t.equal(await peer.closed, 1008, 'closed with 1008')
  t.equal(peer.closeReason, 'too many failed authentications')
  const answers = peer.frames.filter((f) => f.includes('authenticationError'))
  t.equal(answers.length, 5, 'each of the 5 failures was answered before the close')
  t.notOk(lines.some((l) => l.level >= 50))
})

t.test('authentication failures: one warn line per peer per interval', async (t) => {
  const { url, lines } = await loggedKite(t, { maxAuthFailures: 0, authenticators: { token: () => { throw new Error('forged') } } })
  const peer = await RawPeer.open(url.replace('http', 'ws'))
  for (let i = 0; i < 50; i++) {
    peer.send(JSON.stringify({ method: 'secret', arguments: [{ kite: null, authentication: { type: 'token', key: 'x' }, responseCallback: '[Function]', withArgs: [] }], callbacks: { [i]: [0, 'responseCallback'] } }))
  }
  await peer.waitFor((f) => f.startsWith('{"method":49,'))
  t.equal(warns(lines, 'authentication failed').length, 1, '50 failures, one warn line')
  t.equal(peer.closeCode, null, 'maxAuthFailures 0 never closes')
  peer.close()
})

t.test('callbacks held per connection: maxCallbacksHeld, on the server and on KiteClient', async (t) => {
  const { url } = await loggedKite(t, { maxCallbacksHeld: 3 })
  const peer = await RawPeer.open(url.replace('http', 'ws'))
  for (let i = 0; i < 4; i++) peer.send(call('giveFunction', [], i))
  const fourth = await peer.waitFor((f) => f.startsWith('{"method":3,'))
  t.match(fourth, /too many callbacks held for the peer \(limit 3, option maxCallbacksHeld\)/, 'the fourth result cannot hand over its function; the error names the option')
  const third = await peer.waitFor((f) => f.startsWith('{"method":2,'))
  t.match(third, /"result":\{"later":"\[Function\]"\}/, 'the first three did')
  peer.close()

  const client = new KiteClient(url, { transport: 'websocket', maxCallbacksHeld: 2 })
  await client.connect()
  t.teardown(() => client.close())
  await client.tell('square', 2, () => {})
  await client.tell('square', 2, () => {})
  await t.rejects(client.tell('square', 2, () => {}), { code: 'KITE_ERR_CALLBACK_LIMIT', type: 'sendError', message: /limit 2, option maxCallbacksHeld/ }, 'a full table is a clear error naming the option')
  t.equal(await client.tell('square', 5), 25, 'calls without callbacks still work')
  t.throws(() => new KiteClient(url, { maxCallbacksHeld: 0 }), /maxCallbacksHeld/)
})

t.test('kite-server refuses bad abuse options at register', async (t) => {
  for (const bad of [{ maxBufferedBytes: 10 }, { backpressureGraceMs: -1 }, { handshakeTimeoutMs: -5 }, { idleTimeoutMs: Number.NaN }, { maxAuthFailures: 1.5 }, { maxCallbacksHeld: 0 }, { warnIntervalMs: -1 }]) {
    const app = Fastify()
    await t.rejects(async () => app.register(kiteServer, { name: 'x', version: '1.0.0', ...bad }).ready(), new RegExp(Object.keys(bad)[0]!.replace('backpressureGraceMs', 'backpressureGraceMs')), JSON.stringify(bad))
    await app.close()
  }
})

t.test('a binary WebSocket frame is read as text, not a crash', async (t) => {
  const { url } = await loggedKite(t)
  const ws = new WebSocket(url.replace('http', 'ws'))
  await once(ws, 'open')
  ws.send(Buffer.from(pingCall(7)), { binary: true })
  const [data] = (await once(ws, 'message')) as [Buffer]
  t.match(data.toString(), /"result":"pong"/)
  ws.terminate()
})

t.test('KiteClient: a server that never reads pauses the client, then the connection is dropped after the grace period', async (t) => {
  // A WebSocket server that completes the upgrade and never reads again.
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.once('data', (head: Buffer) => {
      const key = /Sec-WebSocket-Key: (.*)\r\n/i.exec(head.toString())?.[1] ?? ''
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
      socket.pause()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  const { port } = server.address() as net.AddressInfo
  const client = new KiteClient(`ws://127.0.0.1:${port}/kite`, { maxBufferedBytes: 64 * 1024, backpressureGraceMs: 300, idleTimeout: 0, timeout: 0 })
  t.teardown(() => client.close())
  await client.connect()
  const disconnected = once(client, 'disconnect') as Promise<[string]>
  const calls: Array<Promise<unknown>> = []
  const payload = 'x'.repeat(16 * 1024)
  // Keep calling until the client gives up: the kernel buffers take some megabytes first.
  while (client.connected && calls.length < 20_000) {
    calls.push(client.tell('square', payload).catch((err: Error) => err))
    if (calls.length % 50 === 0) await new Promise((r) => setImmediate(r))
  }
  const [reason] = await disconnected
  t.match(reason, /the server does not read: more than 65536 bytes unsent for 300 ms/, `disconnect: ${reason}`)
  const outcomes = await Promise.all(calls)
  t.ok(outcomes.every((o) => o instanceof Error), 'every pending call failed')
  t.ok(outcomes.some((o) => (o as KiteError).type === 'disconnect'), 'with disconnect')
})
