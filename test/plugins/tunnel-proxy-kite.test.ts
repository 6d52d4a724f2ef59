import t from 'tap'
import { createServer, type Server } from 'node:http'
import { startKontrol, startRegisteredKite } from '../helpers/kontrol.js'
import { connectClient } from '../helpers/server.js'
import { findKites, startPrivateKite, startTunnelProxy } from '../helpers/proxy.js'
import { checkTunnelURL } from '../../plugins/kontrol-register/proxy-link.js'

// `kite.tunnel` makes a kite dial a URL. It is answered only on the kite's own connection to the tunnel
// proxy it registered with, and only for that proxy's /tunnel/<srv>/<sess>/websocket URLs: in the
// method table, any caller could make the kite dial any URL (SSRF).
t.setTimeout(240000)

/** An HTTP server that counts the connections made to it (a URL a caller would like the kite to dial). */
async function target(t: Tap.Test): Promise<{ server: Server; url: string; hits: () => number }> {
  let hits = 0
  const server = createServer((_req, res) => res.end())
  server.on('connection', () => hits++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const address = server.address() as { port: number }
  return { server, url: `ws://127.0.0.1:${address.port}/tunnel/123/abc/websocket`, hits: () => hits }
}

t.test('a caller on a normal connection gets methodNotFound for kite.tunnel, and the kite dials nothing', async (t) => {
  const kontrol = await startKontrol(t)
  const kite = await startRegisteredKite(t, kontrol.url, kontrol.kiteKey('alice'))
  const aim = await target(t)
  const [found] = await findKites(t, kontrol.url, kontrol.kiteKey('bob'), { name: 'math' })
  const token = found!.token
  for (const auth of [undefined, { type: 'token' as const, key: token }, { type: 'kiteKey' as const, key: kontrol.kiteKey('alice') }]) {
    const client = await connectClient(t, kite.url, { auth })
    await t.rejects(client.tell('kite.tunnel', { url: aim.url }), { name: 'KiteError', type: 'methodNotFound' }, `kite.tunnel is not in the method table (${auth?.type ?? 'no credentials'})`)
    await client.close()
  }
  t.equal(aim.hits(), 0, 'the kite dialed nothing')
  t.notOk(kite.app.kite.methods.methods.has('kite.tunnel'), 'nor is it listed by kite.describe')
})

t.test('through the tunnel, a public client gets methodNotFound too', async (t) => {
  const kontrol = await startKontrol(t)
  const proxy = await startTunnelProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('kontrol-owner') })
  const kite = await startPrivateKite(t, kontrol.url, kontrol.kiteKey('alice'))
  const aim = await target(t)
  const client = await connectClient(t, kite.url, { auth: { type: 'kiteKey', key: kontrol.kiteKey('alice') } })
  await t.rejects(client.tell('kite.tunnel', { url: aim.url }), { name: 'KiteError', type: 'methodNotFound' })
  t.equal(aim.hits(), 0)
  t.equal(proxy.app.kiteTunnelProxy.openTunnels, 1, 'the public client\'s own tunnel is the only one')
})

t.test("the tunnel proxy's kite.tunnel is obeyed only for the proxy's own tunnel URLs", async (t) => {
  const kontrol = await startKontrol(t)
  const proxy = await startTunnelProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('kontrol-owner') })
  const kite = await startPrivateKite(t, kontrol.url, kontrol.kiteKey('alice'))
  const aim = await target(t)
  // The proxy's connection to the kite: the one its kite.tunnel calls go over.
  const conn = proxy.app.kiteTunnelProxy.kites.get(kite.id)!
  const host = new URL(proxy.base).host
  await t.rejects(conn.tell('kite.tunnel', [{ url: aim.url }]), { name: 'KiteError', type: 'argumentError', message: /is not the tunnel proxy's host/ }, 'another host is refused')
  await t.rejects(conn.tell('kite.tunnel', [{ url: `wss://${host}/kite` }]), { name: 'KiteError', type: 'argumentError', message: /\/tunnel\/<server>\/<session>\/websocket/ }, 'another path on its host is refused')
  await t.rejects(conn.tell('kite.tunnel', [{ url: `https://${host}/tunnel/1/2/websocket` }]), { name: 'KiteError', type: 'argumentError', message: /ws:\/\/ or wss:\/\// }, 'not a WebSocket URL')
  await t.rejects(conn.tell('kite.tunnel', ['x']), { name: 'KiteError', type: 'argumentError', message: /needs \{url\}/ })
  t.equal(aim.hits(), 0, 'the kite dialed nothing')
  await t.rejects(conn.tell('kite.tunnel', [{ url: `wss://${host}/tunnel/1/2/websocket?token=forged` }]), { name: 'KiteError', type: 'sendError', message: /403/ }, 'a tunnel URL of the proxy is dialed (here refused: its token is not the proxy\'s)')
})

t.test('checkTunnelURL: the shapes of §12.1 on the hosts given', async (t) => {
  const hosts = new Set(['proxy.example:3999'])
  t.same(checkTunnelURL({ url: 'ws://proxy.example:3999/tunnel/123/abc/websocket?token=x' }, hosts), { url: 'ws://proxy.example:3999/tunnel/123/abc/websocket?token=x' })
  t.same(checkTunnelURL({ URL: 'x', url: 'wss://proxy.example:3999/tunnel/1/2/websocket' }, hosts).url, 'wss://proxy.example:3999/tunnel/1/2/websocket')
  t.throws(() => checkTunnelURL({ url: 'ws://proxy.example:4000/tunnel/1/2/websocket' }, hosts), /is not the tunnel proxy's host/, 'another port')
  t.throws(() => checkTunnelURL({ url: 'ws://proxy.example:3999/tunnel/1/websocket' }, hosts), /\/tunnel\/<server>/)
  t.throws(() => checkTunnelURL({ url: 'ws://proxy.example:3999/tunnel/1/2/websocket/../../x' }, hosts), /\/tunnel\/<server>/)
  t.throws(() => checkTunnelURL(null, hosts), /needs \{url\}/)
})
