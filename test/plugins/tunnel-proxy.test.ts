import t from 'tap'
import { startKontrol, eventually } from '../helpers/kontrol.js'
import { runFixture, waitForLine, exited } from '../helpers/child.js'
import { connectClient } from '../helpers/server.js'
import { callEveryTransport, dial, findKites, kitejsCalls, type KitejsKind, startTunnelProxy } from '../helpers/proxy.js'
import { makeKontrol, signJwt } from '../helpers/tokens.js'
import { KiteClient } from '../../lib/client/client.js'
import { decodeJwt } from '../../lib/kitekey.js'

// Several processes on a busy machine: more than the default per-file timeout.
t.setTimeout(240000)

t.test('a kite that listens on no port is found through Kontrol and called through the tunnel proxy', async (t) => {
  const kontrol = await startKontrol(t)
  const { app: proxy, base } = await startTunnelProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('kontrol-owner') })
  const [found] = await findKites(t, kontrol.url, kontrol.kiteKey('bob'), { name: 'tunnelproxy' })
  t.equal(found?.url, `${base.replace('https', 'wss')}/kite`, 'kite query finds the tunnel proxy at ws(s)://<publicHost>/kite, as upstream registers it')
  t.match(found?.kite, { name: 'tunnelproxy', version: '0.0.2', environment: 'test' })

  const child = runFixture(t, 'proxied-kite.mjs', { KONTROL_URL: kontrol.url, KITE_KEY: kontrol.kiteKey('alice'), PROXY: 'tunnel', NO_LISTEN: '1' })
  const [, id, registered] = await waitForLine(child, /^registered (\S+) (\S+)$/)
  t.equal(registered, `${base}/proxy?kiteID=${id}`, 'register returned http(s)://<publicHost>/proxy?kiteID=<id>, registered with Kontrol')
  t.ok(proxy.kiteTunnelProxy.kites.has(id!))

  const [hidden] = await findKites(t, kontrol.url, kontrol.kiteKey('bob'), { name: 'hidden' })
  t.equal(hidden?.url, registered)
  const token = hidden!.token

  await callEveryTransport(t, hidden!.url, token, 'the tunnel')
  const anonymous = await connectClient(t, hidden!.url, { transport: 'sockjs' })
  t.equal(await anonymous.tell('square', 3), 9)
  await t.rejects(anonymous.tell('secret'), { name: 'KiteError', type: 'authenticationError' }, 'a call through the tunnel to an authenticated method without credentials is refused')
  await anonymous.close()

  const kitejsKinds: KitejsKind[] = [
    { name: 'raw WebSocket', transport: 'ws', url: registered!.replace(/^https/, 'wss'), prefix: undefined },
    { name: 'SockJS WebSocket', transport: 'sockjs-ws', url: `${base}/proxy?kiteID=${id}`, prefix: undefined },
    { name: 'SockJS XHR polling', transport: 'sockjs-xhr', url: `${base}/proxy?kiteID=${id}`, prefix: undefined },
  ]
  await kitejsCalls(t, kitejsKinds, token, 'the tunnel')

  // The private kite dies: its tunnels close, the proxy forgets it, new clients get 404.
  const held = await connectClient(t, hidden!.url, { transport: 'sockjs', auth: { type: 'token', key: token } })
  t.equal(await held.tell('square', 2), 4)
  const gone = new Promise<string>((resolve) => held.once('disconnect', resolve))
  const pending = t.rejects(held.tellWithTimeout('count', 0, 1_000_000, () => {}), { name: 'KiteError', type: 'disconnect' }, 'a call in flight fails with disconnect, not a hang')
  child.kill('SIGKILL')
  await exited(child)
  t.match(await gone, /code=1001, reason=the kite went away/, 'the public client is told the kite went away (1001)')
  await pending
  await eventually(() => !proxy.kiteTunnelProxy.kites.has(id!), 10000)
  const late = new KiteClient(hidden!.url, { transport: 'sockjs', connectTimeout: 10000 })
  t.teardown(() => late.close())
  await t.rejects(late.connect(), { message: /404/ }, 'a new client of the forgotten kite gets 404')
  const res = await fetch(`${base}/proxy/123/abcdefabcdefabcdefab/xhr?kiteID=${id}`, { method: 'POST' })
  t.equal(res.status, 404, 'an XHR poll for the forgotten kite gets 404 too')
})

t.test('tunnel tokens: a forged, replayed, expired or misdirected token is refused', async (t) => {
  const kontrol = await startKontrol(t)
  const { app: proxy, base } = await startTunnelProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('kontrol-owner') })
  // A private kite, driven by hand: it records the tunnel URL it is asked to dial.
  const urls: string[] = []
  const privateKite = new KiteClient(`${base}/kite`, { auth: { type: 'kiteKey', key: kontrol.kiteKey('alice') } })
  t.teardown(() => privateKite.close())
  privateKite.handle('kite.tunnel', (req) => {
    urls.push((req.args[0] as { url: string }).url)
    return null
  })
  await privateKite.connect()
  const publicURL = (await privateKite.tell('register', '')) as string
  t.equal(publicURL, `${base}/proxy?kiteID=${privateKite.kite.id}`)

  const client = new KiteClient(publicURL, { transport: 'sockjs', connectTimeout: 10000 })
  t.teardown(() => client.close())
  await client.connect()
  await eventually(() => urls.length === 1, 10000)
  const url = new URL(urls[0]!)
  t.match(url.href, new RegExp(`^wss://127\\.0\\.0\\.1:\\d+/tunnel/\\d+/[0-9a-f]+/websocket\\?token=`), 'kite.tunnel got ws(s)://<publicHost>/tunnel/<srv>/<sess>/websocket?token=<jwt>')
  const token = url.searchParams.get('token')!
  const { header, claims } = decodeJwt(token)
  t.match(header, { alg: 'RS256' })
  t.equal(claims.sub, privateKite.kite.id, 'sub: the kite ID')
  t.type(claims.seq, 'number', 'seq: the tunnel number')
  t.ok((claims.exp as number) - Date.now() / 1000 <= 61, 'a short expiry')
  t.same(Object.keys(claims).sort(), ['exp', 'iat', 'nbf', 'seq', 'sub'], 'the claims of spec §5.6')

  const other = makeKontrol()
  const now = Math.floor(Date.now() / 1000)
  const forged = signJwt({ alg: 'RS256', typ: 'JWT' }, { sub: claims.sub, seq: claims.seq, iat: now, nbf: now - 60, exp: now + 60 }, other.privateKey)
  await t.rejects(dial(`${url.origin}${url.pathname}?token=${forged}`), /403/, 'a token signed with another key is refused')
  const none = signJwt({ alg: 'none', typ: 'JWT' }, { sub: claims.sub, seq: claims.seq, exp: now + 60 }, null)
  await t.rejects(dial(`${url.origin}${url.pathname}?token=${none}`), /403/, 'an unsigned token is refused')
  const misdirected = proxy.kiteTunnelProxy.signToken({ sub: 'someone-else', seq: claims.seq as number, iat: now, nbf: now - 60, exp: now + 60 })
  await t.rejects(dial(`${url.origin}${url.pathname}?token=${misdirected}`), /403/, 'a token for another kite is refused')
  // (Another tunnel's number: an expired token for this very tunnel would end its public session, see tunnel-proxy-close.test.ts.)
  const expired = proxy.kiteTunnelProxy.signToken({ sub: claims.sub as string, seq: (claims.seq as number) + 1000, iat: now - 120, nbf: now - 180, exp: now - 60 })
  await t.rejects(dial(`${url.origin}${url.pathname}?token=${expired}`), /403/, 'an expired token is refused')
  await t.rejects(dial(`${url.origin}${url.pathname}`), /403/, 'no token: refused')

  // The real token opens the tunnel once; the public client's call then goes through it.
  const tunnel = await dial(url.href)
  const frames: string[] = []
  tunnel.on('message', (d) => frames.push(d.toString()))
  await eventually(() => frames.includes('o'), 5000)
  await t.rejects(dial(url.href), /403/, 'the same token again (a replay) is refused')
  const call = client.tell('square', 8)
  await eventually(() => frames.some((f) => f.startsWith('a[')), 5000)
  const request = JSON.parse((JSON.parse(frames.find((f) => f.startsWith("a["))!.slice(1)) as string[])[0]!) as { method: string; callbacks: Record<string, unknown> }
  t.equal(request.method, 'square', 'the public call arrives through the tunnel')
  const responseId = Object.keys(request.callbacks)[0]
  tunnel.send(JSON.stringify([JSON.stringify({ method: Number(responseId), arguments: [{ error: null, result: 64 }], callbacks: {} })]))
  t.equal(await call, 64, 'and the answer goes back')
  tunnel.close()
  await new Promise((resolve) => client.once('disconnect', resolve))
  t.pass('closing the tunnel ends the public session')
  t.equal(proxy.kiteTunnelProxy.openTunnels, 0)
})

t.test('a kite that never opens its tunnel: the public client is closed, not left hanging', async (t) => {
  const kontrol = await startKontrol(t)
  const { app: proxy, base } = await startTunnelProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('kontrol-owner') }, { tunnelTimeoutMs: 500 })
  const privateKite = new KiteClient(`${base}/kite`, { auth: { type: 'kiteKey', key: kontrol.kiteKey('alice') } })
  t.teardown(() => privateKite.close())
  privateKite.handle('kite.tunnel', () => null)
  await privateKite.connect()
  const publicURL = (await privateKite.tell('register', '')) as string
  const client = new KiteClient(publicURL, { transport: 'sockjs', timeout: 20000 })
  t.teardown(() => client.close())
  await client.connect()
  const gone = new Promise<string>((resolve) => client.once('disconnect', resolve))
  const call = client.tell('square', 2)
  t.match(await gone, /code=1011, reason=the kite did not open a tunnel in time/, 'closed with 1011')
  await t.rejects(call, { name: 'KiteError', type: 'disconnect' })
  t.equal(proxy.kiteTunnelProxy.pendingTunnels, 0)
  // An unregistered id and a missing one are refused over HTTP.
  t.equal((await fetch(`${base}/proxy/info?kiteID=nobody`)).status, 404)
  t.equal((await fetch(`${base}/proxy/info`)).status, 400)
  t.equal((await fetch(`${base}/tunnel/1/2/xhr?token=x`, { method: 'POST' })).status, 404, 'tunnels are WebSocket only')
})

t.test('the tunnelproxy kite takes its environment from the configuration by default (unknown), as upstream, where a Go kite looks for it', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { kiteTunnelProxy } = await import('../../index.js')
  const saved = process.env.KITE_ENVIRONMENT
  t.teardown(() => {
    if (saved === undefined) delete process.env.KITE_ENVIRONMENT
    else process.env.KITE_ENVIRONMENT = saved
  })
  for (const [env, expected] of [[undefined, 'unknown'], ['staging', 'staging']] as const) {
    if (env === undefined) delete process.env.KITE_ENVIRONMENT
    else process.env.KITE_ENVIRONMENT = env
    const app = Fastify()
    await app.register(kiteTunnelProxy, { publicHost: '127.0.0.1' })
    await app.ready()
    t.equal(app.kite.identity.environment, expected, `KITE_ENVIRONMENT ${env ?? 'unset'}: ${expected}`)
    await app.close()
  }
})
