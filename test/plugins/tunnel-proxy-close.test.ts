import t from 'tap'
import type WebSocket from 'ws'
import { startKontrol } from '../helpers/kontrol.js'
import { closed, dial, startPrivateKite, startTunnelProxy } from '../helpers/proxy.js'
import { call } from '../helpers/raw-peer.js'
import { KiteClient } from '../../lib/client/client.js'
import { closeReason } from '../../plugins/kite-server/tunnel.js'

// Closes through a tunnel (spec §12.1): the code and reason the kite closed with reach the public
// client as they were (upstream sends 3000 "Go away!" whatever happened); a side that drops makes the
// proxy close the other with 1001; a refused tunnel token ends the public session with 1008.
t.setTimeout(240000)

interface Started {
  kontrol: Awaited<ReturnType<typeof startKontrol>>
  proxy: Awaited<ReturnType<typeof startTunnelProxy>>
  kite: Awaited<ReturnType<typeof startPrivateKite>>
}

async function start(t: Tap.Test): Promise<Started> {
  const kontrol = await startKontrol(t)
  const proxy = await startTunnelProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('kontrol-owner') })
  const kite = await startPrivateKite(t, kontrol.url, kontrol.kiteKey('alice'))
  return { kontrol, proxy, kite }
}

/** A public SockJS WebSocket session through the tunnel, read frame by frame. */
async function sockjsSession(t: Tap.Test, s: Started): Promise<{ ws: WebSocket; frames: string[]; end: Promise<{ code: number; reason: string }> }> {
  const ws = await dial(`${s.proxy.base.replace('https', 'wss')}/proxy/123/0123456789abcdef0123/websocket?kiteID=${s.kite.id}`)
  t.teardown(() => ws.terminate())
  const frames: string[] = []
  ws.on('message', (d) => frames.push(d.toString()))
  return { ws, frames, end: closed(ws) }
}

const withAuth = (method: string, id: number, key: string): string =>
  JSON.stringify({ method, arguments: [{ kite: null, authentication: { type: 'token', key }, responseCallback: '[Function]', withArgs: [] }], callbacks: { [id]: [0, 'responseCallback'] } })

t.test("the kite's close code and reason reach the public client as they were", async (t) => {
  const s = await start(t)

  const sockjs = await sockjsSession(t, s)
  sockjs.ws.send(JSON.stringify([call('bye', [])]))
  t.same(await sockjs.end, { code: 4001, reason: 'bye from the kite' }, 'SockJS WebSocket: the WebSocket closes with the kite\'s code')
  t.equal(sockjs.frames[0], 'o')
  t.equal(sockjs.frames.at(-1), 'c[4001,"bye from the kite"]', 'SockJS: c[4001,"bye from the kite"]')
  t.ok(sockjs.frames.some((f) => f.startsWith('a[') && f.includes('bye')), 'the answer sent before the close arrived first')

  const raw = await dial(`${s.proxy.base.replace('https', 'wss')}/proxy?kiteID=${s.kite.id}`)
  t.teardown(() => raw.terminate())
  const rawEnd = closed(raw)
  raw.send(call('bye', []))
  t.same(await rawEnd, { code: 4001, reason: 'bye from the kite' }, 'raw WebSocket: the close frame carries the kite\'s code and reason')

  const xhr = new KiteClient(s.kite.url, { transport: 'xhr-polling', timeout: 10000 })
  t.teardown(() => xhr.close())
  await xhr.connect()
  const gone = new Promise<string>((resolve) => xhr.once('disconnect', resolve))
  await xhr.tell('bye').catch(() => null)
  t.match(await gone, /4001.*bye from the kite/, 'SockJS XHR polling: the client is told 4001 and the reason')
})

t.test('a kite that closes after too many failed authentications: the answers, then c[1008,…]', async (t) => {
  const s = await start(t)
  const sockjs = await sockjsSession(t, s)
  sockjs.ws.send(JSON.stringify([withAuth('secret', 0, 'not-a-token'), withAuth('secret', 1, 'not-a-token')]))
  t.same(await sockjs.end, { code: 1008, reason: 'too many failed authentications' })
  const answers = sockjs.frames.filter((f) => f.startsWith('a[')).flatMap((f) => JSON.parse(f.slice(1)) as string[]).map((m) => JSON.parse(m) as { arguments: [{ error?: { type?: string } | null }] })
  t.same(answers.map((a) => a.arguments[0].error?.type), ['authenticationError', 'authenticationError'], 'both calls were answered before the close')
  t.equal(sockjs.frames.at(-1), 'c[1008,"too many failed authentications"]')
})

t.test('the kite shuts down or drops: its tunnels close with 1001 (going away)', async (t) => {
  const s = await start(t)
  const sockjs = await sockjsSession(t, s)
  const raw = await dial(`${s.proxy.base.replace('https', 'wss')}/proxy?kiteID=${s.kite.id}`)
  t.teardown(() => raw.terminate())
  const rawEnd = closed(raw)
  // Both tunnels are open once a call went through each.
  const answered = [new Promise((resolve) => raw.once('message', resolve)), new Promise((resolve) => sockjs.ws.on('message', (d) => d.toString().startsWith('a[') && resolve(null)))]
  sockjs.ws.send(JSON.stringify([call('kite.ping', [])]))
  raw.send(call('kite.ping', []))
  await Promise.all(answered)
  await s.kite.app.close()
  t.same(await sockjs.end, { code: 1001, reason: 'server shutting down' }, 'SockJS: the kite\'s own 1001 on shutdown')
  t.equal(sockjs.frames.at(-1), 'c[1001,"server shutting down"]')
  t.same(await rawEnd, { code: 1001, reason: 'server shutting down' }, 'raw WebSocket: the same')
})

t.test('a refused tunnel token ends the public session with 1008 (policy)', async (t) => {
  const kontrol = await startKontrol(t)
  const proxy = await startTunnelProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('kontrol-owner') })
  // A private kite driven by hand: it dials the tunnel with an expired token the proxy signed for that very tunnel.
  const privateKite = new KiteClient(`${proxy.base}/kite`, { auth: { type: 'kiteKey', key: kontrol.kiteKey('alice') } })
  t.teardown(() => privateKite.close())
  const refused: Promise<unknown>[] = []
  privateKite.handle('kite.tunnel', (req) => {
    const url = new URL((req.args[0] as { url: string }).url)
    const claims = proxy.app.kiteTunnelProxy.verifyToken(url.searchParams.get('token')!)
    const now = Math.floor(Date.now() / 1000)
    url.searchParams.set('token', proxy.app.kiteTunnelProxy.signToken({ ...claims, iat: now - 120, nbf: now - 180, exp: now - 60 }))
    refused.push(dial(url.href).catch((err: Error) => err.message))
    return null
  })
  await privateKite.connect()
  const publicURL = (await privateKite.tell('register', '')) as string
  const ws = await dial(`${publicURL.replace('https', 'wss').replace('/proxy?', '/proxy/123/0123456789abcdef0123/websocket?')}`)
  t.teardown(() => ws.terminate())
  const frames: string[] = []
  ws.on('message', (d) => frames.push(d.toString()))
  const end = closed(ws)
  t.same(await end, { code: 1008, reason: 'tunnel token refused: token is expired' }, 'the public client is closed with 1008')
  t.equal(frames.at(-1), 'c[1008,"tunnel token refused: token is expired"]')
  t.match(await refused[0], /403/, 'and the kite\'s dial got 403')
  t.equal(proxy.app.kiteTunnelProxy.pendingTunnels, 0)
})

t.test('the public client closes or drops: the kite is told with its code, or 1001', async (t) => {
  const s = await start(t)
  const conns: Promise<{ code: number | null; reason: string | null }>[] = []
  s.kite.app.kite.on('connect', (conn) => {
    conns.push(new Promise((resolve) => conn.once('close', () => resolve({ code: conn.closeCode, reason: conn.closeReason }))))
  })
  const raw = await dial(`${s.proxy.base.replace('https', 'wss')}/proxy?kiteID=${s.kite.id}`)
  raw.send(call('kite.ping', []))
  await new Promise((resolve) => raw.once('message', resolve))
  raw.close(4002, 'client says bye')
  t.same(await conns[0], { code: 4002, reason: 'client says bye' }, 'the public client\'s close code reaches the kite')

  const dropped = await dial(`${s.proxy.base.replace('https', 'wss')}/proxy?kiteID=${s.kite.id}`)
  dropped.send(call('kite.ping', []))
  await new Promise((resolve) => dropped.once('message', resolve))
  dropped.terminate()
  t.same(await conns[1], { code: 1001, reason: 'the client went away' }, 'a public client that drops: the kite sees 1001')
})

t.test('a kite whose kite.tunnel fails: the public client is closed with 1011 and the reason', async (t) => {
  const kontrol = await startKontrol(t)
  const proxy = await startTunnelProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('kontrol-owner') })
  const privateKite = new KiteClient(`${proxy.base}/kite`, { auth: { type: 'kiteKey', key: kontrol.kiteKey('alice') } })
  t.teardown(() => privateKite.close())
  privateKite.handle('kite.tunnel', () => {
    throw new Error('no tunnels today')
  })
  await privateKite.connect()
  const publicURL = (await privateKite.tell('register', '')) as string
  const ws = await dial(`${publicURL.replace('https', 'wss').replace('/proxy?', '/proxy/123/0123456789abcdef0123/websocket?')}`)
  t.teardown(() => ws.terminate())
  const end = await closed(ws)
  t.equal(end.code, 1011)
  t.match(end.reason, /^the kite did not open a tunnel: .*no tunnels today/)
  t.equal(proxy.app.kiteTunnelProxy.pendingTunnels, 0)
})

t.test('closeReason: at most the 123 bytes a close frame carries, whole characters', async (t) => {
  t.equal(closeReason('bye'), 'bye')
  t.equal(closeReason('x'.repeat(200)), 'x'.repeat(123))
  const cut = closeReason('é'.repeat(100))
  t.equal(Buffer.byteLength(cut), 122, 'a two-byte character is not split')
  t.equal(cut, 'é'.repeat(61))
})
