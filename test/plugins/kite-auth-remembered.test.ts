import t from 'tap'
import { kiteAuth, type KiteAuthOptions } from '../../plugins/kite-auth/index.js'
import { connectClient, once, startKite } from '../helpers/server.js'
import { makeKontrol } from '../helpers/tokens.js'
import { RawPeer } from '../helpers/raw-peer.js'
import type { KiteAuth } from '../../lib/protocol/envelope.js'
import type { TransportName } from '../../lib/client/transports/transport.js'

/**
 * Remembered credentials: once a kite.key or token passed on a WebSocket
 * connection, the answer says `authRemembered` and a KiteClient sends
 * `{ type, remembered: true }` instead of the key on that connection.
 */
const kontrol = makeKontrol('kontrol-owner')
const SELF = { username: 'alice', environment: 'prod', name: 'math' }
const AUD = '/alice/prod/math'

/** A kite with kite-auth, a `whoami` that records the credentials each call came with, and `open` (no authentication) that shows them. */
async function authedKite(t: Tap.Test, options: KiteAuthOptions = {}) {
  const seen: KiteAuth[] = []
  const started = await startKite(t, { ...SELF, maxAuthFailures: 0 }, async (app) => {
    await app.register(kiteAuth, { trustedKontrolKeys: [{ publicKey: kontrol.publicKey, issuer: kontrol.issuer }], kiteKey: false, ...options })
    app.kite.handle('whoami', (req) => {
      seen.push({ ...req.authentication! })
      return req.username
    })
    app.kite.handle('open', (req) => req.authentication).disableAuthentication()
  })
  return { ...started, seen }
}

/** A call as a Go kite or a raw peer sends it, with `auth` as its credentials. */
function call(id: number, auth: unknown, method = 'whoami'): string {
  return JSON.stringify({ method, arguments: [{ kite: { username: 'x', environment: 'e', name: 'raw', version: '1.0.0', region: 'r', hostname: 'h', id: 'i' }, authentication: auth, withArgs: [], responseCallback: '[Function]' }], callbacks: { [id]: [0, 'responseCallback'] } })
}

/** The answer to callback `id` among a raw peer's frames. */
async function answer(peer: RawPeer, id: number): Promise<{ error: { type: string; message: string } | null; result: unknown; authRemembered?: boolean }> {
  const frame = await peer.waitFor((f) => (JSON.parse(f) as { method: unknown }).method === id)
  return (JSON.parse(frame) as { arguments: [never] }).arguments[0]
}

for (const [transport, kinds] of [['websocket', ['token', 'kiteKey']], ['sockjs', ['token']]] as Array<[TransportName, string[]]>) {
  for (const type of kinds) {
    t.test(`${transport}, ${type}: after the first answer, calls carry a reference instead of the key`, async (t) => {
      const { app, url, seen } = await authedKite(t)
      const key = type === 'token' ? kontrol.token('bob', AUD) : kontrol.kiteKey('bob')
      const client = await connectClient(t, url, { transport, auth: { type, key } })
      t.equal(await client.tell('whoami'), 'bob')
      for (let i = 0; i < 5; i++) t.equal(await client.tell('whoami'), 'bob', 'the username is the one the key says')
      t.same(seen[0], { type, key, remember: true, remembered: false }, 'the first call sent the key, asking the kite to remember it')
      for (const auth of seen.slice(1)) t.same(auth, { type, key, remember: false, remembered: true }, 'later calls sent a reference; handlers see the remembered key')
      t.equal(app.kiteAuth.verifications, 1, 'verified once')
    })
  }
}

t.test('XHR polling: nothing is remembered, every call carries the key (a session URL is not one peer)', async (t) => {
  const { url, seen } = await authedKite(t)
  const key = kontrol.token('bob', AUD)
  const client = await connectClient(t, url, { transport: 'xhr-polling', auth: { type: 'token', key } })
  for (let i = 0; i < 3; i++) t.equal(await client.tell('whoami'), 'bob')
  for (const auth of seen) t.same(auth, { type: 'token', key, remember: true, remembered: false })
})

t.test('rememberCredentials: false: no answer says authRemembered, every call carries the key', async (t) => {
  const { url, seen } = await authedKite(t, { rememberCredentials: false })
  const key = kontrol.token('bob', AUD)
  const client = await connectClient(t, url, { transport: 'websocket', auth: { type: 'token', key } })
  for (let i = 0; i < 3; i++) t.equal(await client.tell('whoami'), 'bob')
  for (const auth of seen) t.same(auth, { type: 'token', key, remember: true, remembered: false })
})

t.test('on the wire: answers to calls that passed with a key say authRemembered; a reference works only where a key passed', async (t) => {
  const { url } = await authedKite(t)
  const token = kontrol.token('bob', AUD)
  const ws = url.replace(/^http/, 'ws')
  const fresh = await RawPeer.open(ws)
  t.teardown(() => fresh.close())
  fresh.send(call(1, { type: 'token', remembered: true }))
  const refused = await answer(fresh, 1)
  t.match(refused.error, { type: 'authenticationError', message: 'token: no credentials remembered on this connection' }, 'a reference on a connection that passed nothing is refused')
  t.equal(refused.authRemembered, undefined)

  fresh.send(call(2, { type: 'token', key: token }))
  t.same(await answer(fresh, 2), { error: null, result: 'bob' }, 'a key sent as Go kites send it: the answer is as Go answers it')
  fresh.send(call(7, { type: 'token', remembered: true }))
  t.match((await answer(fresh, 7)).error, { type: 'authenticationError', message: 'token: no credentials remembered on this connection' }, 'nothing was asked for, nothing is remembered')
  fresh.send(call(8, { type: 'token', key: token, remember: true }))
  const passed = await answer(fresh, 8)
  t.same(passed, { error: null, result: 'bob', authRemembered: true }, 'a key that passed with remember: the answer says it is remembered')
  fresh.send(call(3, { type: 'token', remembered: true }))
  t.same(await answer(fresh, 3), { error: null, result: 'bob' }, 'then a reference passes, and its answer says nothing more')
  fresh.send(call(4, { type: 'kiteKey', remembered: true }))
  t.match((await answer(fresh, 4)).error, { type: 'authenticationError', message: 'kiteKey: no credentials remembered on this connection' }, 'a reference of another type is refused')
  fresh.send(call(5, { type: 'token', key: 'not-a-token' }))
  t.match((await answer(fresh, 5)).error, { type: 'authenticationError' }, 'a bad key still fails')
  fresh.send(call(6, { type: 'token', remembered: true }))
  t.same(await answer(fresh, 6), { error: null, result: 'bob' }, 'and does not replace what was remembered')

  const other = await RawPeer.open(ws)
  t.teardown(() => other.close())
  other.send(call(1, { type: 'token', remembered: true }))
  t.match((await answer(other, 1)).error, { type: 'authenticationError' }, 'what one connection passed is nothing on another')
})

t.test('a reference is worth what its key is: it expires with the token, and a new token is sent whole', async (t) => {
  let now = Date.now()
  const { url, seen } = await authedKite(t, { clock: () => now })
  const first = kontrol.token('bob', AUD, { exp: Math.floor(now / 1000) + 60 })
  const client = await connectClient(t, url, { transport: 'websocket', auth: { type: 'token', key: first } })
  t.equal(await client.tell('whoami'), 'bob')
  t.equal(await client.tell('whoami'), 'bob')
  t.same(seen[1], { type: 'token', key: first, remember: false, remembered: true })
  now += 61_000
  const expired = once(client, 'tokenExpired')
  await t.rejects(client.tell('whoami'), { type: 'authenticationError', message: 'token: token is expired', code: 'KITE_ERR_AUTH_TOKEN_EXPIRED' }, 'the reference fails as the expired token would')
  await expired
  const renewed = kontrol.token('carol', AUD, { exp: Math.floor(now / 1000) + 60 })
  client.auth = { type: 'token', key: renewed }
  t.equal(await client.tell('whoami'), 'carol', 'the new token, sent whole')
  t.same(seen.at(-1), { type: 'token', key: renewed, remember: true, remembered: false })
  t.equal(await client.tell('whoami'), 'carol', 'then referred to')
  t.same(seen.at(-1), { type: 'token', key: renewed, remember: false, remembered: true })
})

t.test('a reference is checked against the trusted keys of now: a key trusted later makes the remembered credential count again', async (t) => {
  const other = makeKontrol('other-kontrol')
  const { app, url } = await authedKite(t)
  const peer = await RawPeer.open(url.replace(/^http/, 'ws'))
  t.teardown(() => peer.close())
  peer.send(call(1, { type: 'token', key: other.token('dave', AUD) }))
  t.match((await answer(peer, 1)).error, { type: 'authenticationError' }, 'not trusted yet')
  app.kiteAuth.addTrustedKey({ publicKey: other.publicKey, issuer: other.issuer })
  peer.send(call(2, { type: 'token', key: other.token('dave', AUD), remember: true }))
  t.same(await answer(peer, 2), { error: null, result: 'dave', authRemembered: true })
  app.kiteAuth.addTrustedKey({ publicKey: makeKontrol('third').publicKey, issuer: 'third' })
  peer.send(call(3, { type: 'token', remembered: true }))
  t.same(await answer(peer, 3), { error: null, result: 'dave' }, 'after the trusted set changed, the remembered token is verified again and still passes')
  t.equal(app.kiteAuth.verifications, 2, 'the change cost one verification of the remembered key')
})

t.test('a method without authentication sees the key a reference stands for (a handler forwarding or checking credentials itself)', async (t) => {
  const { url, seen } = await authedKite(t)
  const key = kontrol.token('bob', AUD)
  const client = await connectClient(t, url, { transport: 'websocket', auth: { type: 'token', key } })
  t.equal(await client.tell('whoami'), 'bob')
  t.equal(await client.tell('whoami'), 'bob')
  t.equal(seen[1]!.remembered, true, 'the client refers to its token now')
  t.same(await client.tell('open'), { type: 'token', key, remember: false, remembered: true }, 'the handler sees the key')
})

t.test('a reference the kite no longer takes: that call fails, the next ones send the key whole and are remembered again', async (t) => {
  const { app, url, seen } = await authedKite(t)
  const key = kontrol.token('bob', AUD)
  const client = await connectClient(t, url, { transport: 'websocket', auth: { type: 'token', key } })
  t.equal(await client.tell('whoami'), 'bob')
  t.equal(await client.tell('whoami'), 'bob')
  t.equal(seen.at(-1)!.remembered, true)
  for (const conn of app.kite.connections) conn.rememberedAuth = null // the kite forgot (e.g. a bug, or a kite that does not keep them)
  await t.rejects(client.tell('whoami'), { type: 'authenticationError', message: 'token: no credentials remembered on this connection' })
  t.equal(await client.tell('whoami'), 'bob', 'the next call passes')
  t.same(seen.at(-1), { type: 'token', key, remember: true, remembered: false }, 'with the key, asking again')
  t.equal(await client.tell('whoami'), 'bob')
  t.same(seen.at(-1), { type: 'token', key, remember: false, remembered: true }, 'then a reference again')
})

t.test("app.kiteAuth.authenticate on the caller's connection neither remembers nor resolves references", async (t) => {
  const { app, url } = await authedKite(t)
  app.kite.handle('check', async (req) => {
    const [other] = req.args as [string]
    const r = await app.kiteAuth.authenticate({ authentication: { type: 'token', key: other, remember: true }, kite: req.kite, method: 'check', connection: req.connection })
    return r.username
  })
  const key = kontrol.token('bob', AUD)
  const client = await connectClient(t, url, { transport: 'websocket', auth: { type: 'token', key } })
  t.equal(await client.tell('whoami'), 'bob')
  t.equal(await client.tell('check', kontrol.token('mallory', AUD)), 'mallory', 'a handler checks another credential')
  t.equal(await client.tell('whoami'), 'bob', "the caller's reference still stands for its own token")
  await t.rejects(app.kiteAuth.authenticate({ authentication: { type: 'token', key: '', remembered: true }, kite: { username: 'x', environment: 'e', name: 'n', version: '1.0.0', region: 'r', hostname: 'h', id: 'i' }, method: 'm', connection: [...app.kite.connections][0]! }), { message: 'no key given' }, 'a reference handed to app.kiteAuth.authenticate stands for nothing')
})
