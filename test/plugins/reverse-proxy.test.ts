import t from 'tap'
import { startKontrol, eventually } from '../helpers/kontrol.js'
import { runFixture, waitForLine, exited } from '../helpers/child.js'
import { connectClient } from '../helpers/server.js'
import { callEveryTransport, findKites, kitejsCalls, type KitejsKind, startReverseProxy } from '../helpers/proxy.js'
import { KiteClient } from '../../lib/client/client.js'
import { backendTarget } from '../../plugins/reverse-proxy/index.js'

// Several processes on a busy machine: more than the default per-file timeout.
t.setTimeout(240000)

t.test('backendTarget maps /proxy/<id>/<rest> onto the kite URL, query kept, never outside it', async (t) => {
  const backend = new URL('http://10.0.0.5:3636/kite')
  t.equal(backendTarget(backend, '/proxy/ID/123/abc/websocket', 'ID', true)?.href, 'ws://10.0.0.5:3636/kite/123/abc/websocket', 'spec §12.2 example')
  t.equal(backendTarget(backend, '/proxy/ID/123/abc/xhr?x=1', 'ID', false)?.href, 'http://10.0.0.5:3636/kite/123/abc/xhr?x=1')
  t.equal(backendTarget(backend, '/proxy/ID', 'ID', true)?.href, 'ws://10.0.0.5:3636/kite/')
  t.equal(backendTarget(backend, '/proxy/ID/../admin', 'ID', false), null, 'a .. segment is refused')
  t.equal(backendTarget(backend, '/proxy/ID/%2e%2e/admin', 'ID', false), null, 'an encoded .. segment is refused')
})

t.test('a kite registered through the reverse proxy is found through Kontrol and called over TLS at the proxy', async (t) => {
  const kontrol = await startKontrol(t)
  const { app: proxy, base } = await startReverseProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('proxy-owner') })
  t.match(base, /^https:\/\/127\.0\.0\.1:\d+$/)
  t.equal(proxy.kontrolRegister.url, `${base}/kite`, 'the proxy registers its own public https URL with Kontrol')
  const [proxyFound] = await findKites(t, kontrol.url, kontrol.kiteKey('bob'), { name: 'proxy' })
  t.equal(proxyFound?.url, `${base}/kite`, 'kite query finds the proxy')
  t.match(proxyFound?.kite, { name: 'proxy', version: '0.0.1', region: 'test', environment: 'test' })

  const child = runFixture(t, 'proxied-kite.mjs', { KONTROL_URL: kontrol.url, KITE_KEY: kontrol.kiteKey('alice'), PROXY: 'reverse' })
  const [, id, registered] = await waitForLine(child, /^registered (\S+) (\S+)$/)
  t.equal(registered, `${base}/proxy/${id}`, 'the kite registered <scheme>://<publicHost>:<publicPort>/proxy/<kiteID> with Kontrol')
  t.ok(proxy.kiteReverseProxy.kites.has(id!), 'the proxy remembers the kite under its id')
  t.match(proxy.kiteReverseProxy.kites.get(id!)?.backend.href, /^http:\/\/127\.0\.0\.1:\d+\/kite$/, 'with its plain http backend URL')

  const [found] = await findKites(t, kontrol.url, kontrol.kiteKey('bob'), { name: 'hidden' })
  t.equal(found?.url, registered, 'Kontrol gives the proxy URL to whoever looks the kite up')
  const token = found!.token

  await callEveryTransport(t, found!.url, token, 'the proxy')

  const kitejsKinds: KitejsKind[] = [
    { name: 'raw WebSocket', transport: 'ws', url: registered!.replace(/^https/, 'wss'), prefix: undefined },
    { name: 'SockJS WebSocket', transport: 'sockjs-ws', url: base, prefix: `/proxy/${id}` },
    { name: 'SockJS XHR polling', transport: 'sockjs-xhr', url: base, prefix: `/proxy/${id}` },
  ]
  await kitejsCalls(t, kitejsKinds, token, 'the proxy')

  // The kite's process dies: the proxy forgets it, and calls fail at once with a clear error.
  const held = await connectClient(t, found!.url, { transport: 'websocket', auth: { type: 'token', key: token } })
  t.equal(await held.tell('square', 2), 4)
  const gone = new Promise<string>((resolve) => held.once('disconnect', resolve))
  const pending = t.rejects(held.tellWithTimeout('count', 0, 1_000_000, () => {}), { name: 'KiteError', type: 'disconnect' }, 'a call in flight fails with disconnect, not a hang')
  child.kill('SIGKILL')
  await exited(child)
  t.type(await gone, 'string', 'a client connected through the proxy sees the disconnect')
  await pending
  await eventually(() => !proxy.kiteReverseProxy.kites.has(id!), 10000)
  const late = new KiteClient(found!.url, { transport: 'sockjs', connectTimeout: 10000 })
  t.teardown(() => late.close())
  await t.rejects(late.connect(), { type: 'sendError', message: /404/ }, 'a new connection to the forgotten kite fails with 404')
  const res = await fetch(`${registered}/info`)
  t.equal(res.status, 404)
  t.match(await res.json(), { error: 'kite not found', message: `no kite is registered with this proxy under id ${id}` })
})

t.test('the proxy answers unknown ids with 404, refuses unauthenticated register and bad URLs', async (t) => {
  const kontrol = await startKontrol(t)
  const { app: proxy, base } = await startReverseProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('proxy-owner') })
  for (const path of ['/proxy/no-such-kite', '/proxy/no-such-kite/info', '/proxy/no-such-kite/123/abc/xhr']) {
    const res = await fetch(`${base}${path}`, { method: path.endsWith('xhr') ? 'POST' : 'GET' })
    t.equal(res.status, 404, `${path}: 404`)
  }
  const raw = new KiteClient(`${base.replace('https', 'wss')}/proxy/no-such-kite`, { connectTimeout: 10000 })
  t.teardown(() => raw.close())
  await t.rejects(raw.connect(), { message: /404/ }, 'a WebSocket upgrade to an unknown id gets 404, not a hang')

  const anonymous = await connectClient(t, `${base}/kite`)
  await t.rejects(anonymous.tell('register', 'http://127.0.0.1:1/kite'), { name: 'KiteError', type: 'authenticationError' }, 'register needs credentials')
  const alice = await connectClient(t, `${base}/kite`, { auth: { type: 'kiteKey', key: kontrol.kiteKey('alice') } })
  await t.rejects(alice.tell('register', 42), { name: 'KiteError', type: 'argumentError' }, 'a URL that is not a string is refused')
  await t.rejects(alice.tell('register', 'ftp://x/kite'), { name: 'KiteError', type: 'argumentError' }, 'a non-http(s)/ws(s) URL is refused')
  const url = (await alice.tell('register', 'http://127.0.0.1:1/kite')) as string
  t.equal(url, `${base}/proxy/${alice.kite.id}`, 'register returns <scheme>://<publicHost>:<publicPort>/proxy/<kiteID>')
  const res = await fetch(`${url}/info`)
  t.equal(res.status, 502, 'a registered kite that cannot be reached: 502, not a hang')
  const unreachable = new KiteClient(url.replace(/^https/, 'wss'), { connectTimeout: 10000 })
  t.teardown(() => unreachable.close())
  await t.rejects(unreachable.connect(), { message: /502/ }, 'a WebSocket to it: 502 as well')
  await alice.close()
  await eventually(() => !proxy.kiteReverseProxy.kites.has(alice.kite.id), 10000)
  t.pass('the entry is dropped when the registering connection closes')
})

t.test('kontrolRegister dials KITE_PROXY_URL directly with its kite.key', async (t) => {
  const kontrol = await startKontrol(t)
  const { app: proxy, base } = await startReverseProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('proxy-owner') })
  const child = runFixture(t, 'proxied-kite.mjs', { KONTROL_URL: kontrol.url, KITE_KEY: kontrol.kiteKey('carol'), PROXY: 'reverse', KITE_PROXY_URL: `${base}/kite` })
  const [, id, registered] = await waitForLine(child, /^registered (\S+) (\S+)$/)
  t.equal(registered, `${base}/proxy/${id}`)
  t.equal(proxy.kiteReverseProxy.kites.get(id!)?.connection.remoteKite?.username, 'carol', 'authenticated with the kite.key')
  const client = await connectClient(t, registered!, { transport: 'websocket' })
  t.equal(await client.tell('square', 6), 36)
})

t.test('a kite registers again through the proxy after the proxy restarts', async (t) => {
  const kontrol = await startKontrol(t)
  const first = await startReverseProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('proxy-owner') })
  const port = Number(new URL(first.base).port)
  const child = runFixture(t, 'proxied-kite.mjs', { KONTROL_URL: kontrol.url, KITE_KEY: kontrol.kiteKey('dave'), PROXY: 'reverse' })
  const [, id] = await waitForLine(child, /^registered (\S+) (\S+)$/)
  await first.app.close()
  // A new proxy on the same port: the kite finds it through Kontrol and registers with it again.
  const { app } = await startReverseProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('proxy-owner'), port })
  await eventually(() => app.kiteReverseProxy.kites.has(id!), 20000)
  const client = await connectClient(t, `${first.base}/proxy/${id}`, { transport: 'sockjs' })
  t.equal(await client.tell('square', 7), 49, 'reachable through the new proxy')
})
