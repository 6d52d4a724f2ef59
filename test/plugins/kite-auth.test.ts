import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { createRequire } from 'node:module'
import type * as KitejsHelpers from '../helpers/kitejs.cjs'
import { kiteAuth, type KiteAuthOptions } from '../../plugins/kite-auth/index.js'
import { connectClient, startKite } from '../helpers/server.js'
import type { KiteServerOptions } from '../../plugins/kite-server/index.js'
import { makeKontrol, signJwt } from '../helpers/tokens.js'
import type { AuthContext } from '../../lib/methods/dispatch.js'

const require = createRequire(import.meta.url)
const kitejs = require('../helpers/kitejs.cjs') as typeof KitejsHelpers

const kontrol = makeKontrol('kontrol-owner')
const attacker = makeKontrol('kontrol-owner')
const SELF = { username: 'alice', environment: 'prod', name: 'math' }
const AUD = '/alice/prod/math'

/** A kite `math` of alice/prod with kite-auth trusting `kontrol`, and a `whoami` method that needs credentials. */
async function authedKite(t: Tap.Test, options: KiteAuthOptions = {}, serverOptions: Partial<KiteServerOptions> = {}) {
  const started = await startKite(t, { ...SELF, ...serverOptions }, async (app) => {
    await app.register(kiteAuth, { trustedKontrolKeys: [{ publicKey: kontrol.publicKey, issuer: kontrol.issuer }], kiteKey: false, ...options })
    app.kite.handle('whoami', (req) => ({ username: req.username, remote: req.connection.remoteKite?.username }))
  })
  return started
}

t.test('valid credentials are accepted and the username is the authenticated one', async (t) => {
  const { app, url } = await authedKite(t)
  const byToken = await connectClient(t, url, { auth: { type: 'token', key: kontrol.token('bob', AUD) }, kite: { username: 'mallory' } })
  t.same(await byToken.tell('whoami'), { username: 'bob', remote: 'bob' }, 'token: sub, not the claimed username')
  const byKey = await connectClient(t, url, { auth: { type: 'kiteKey', key: kontrol.kiteKey('carol') }, kite: { username: 'mallory' } })
  t.same(await byKey.tell('whoami'), { username: 'carol', remote: 'carol' }, 'kiteKey: sub')
  t.same(await byToken.tell('whoami'), { username: 'bob', remote: 'bob' })
  t.equal(await byToken.tell('square', 3), 9, 'methods with authentication disabled still answer')
  t.equal(app.kiteAuth.verifications, 2, 'each credential was verified once, then answered from the cache')
  for (let i = 0; i < 20; i++) await byToken.tell('whoami')
  t.equal(app.kiteAuth.verifications, 2)
})

t.test('audiences that name less of this kite, or all of it, pass', async (t) => {
  const { url } = await authedKite(t)
  for (const aud of ['/alice', '/alice/prod', '/alice/prod/math', '/alice//math']) {
    const c = await connectClient(t, url, { auth: { type: 'token', key: kontrol.token('bob', aud) } })
    t.same(await c.tell('whoami'), { username: 'bob', remote: 'bob' }, aud)
  }
})

t.test('the root audience is refused by default and accepted when allowed', async (t) => {
  const strict = await authedKite(t)
  const c1 = await connectClient(t, strict.url, { auth: { type: 'token', key: kontrol.token('bob', '/') } })
  await t.rejects(c1.tell('whoami'), { type: 'authenticationError', message: 'token: root audience "/" is not accepted by this kite', code: 'KITE_ERR_AUTH_FAILED' })
  const lenient = await authedKite(t, { audience: { allowRoot: true } })
  const c2 = await connectClient(t, lenient.url, { auth: { type: 'token', key: kontrol.token('bob', '/') } })
  t.same(await c2.tell('whoami'), { username: 'bob', remote: 'bob' })
})

t.test('leeway lets a slightly expired token through, and no more', async (t) => {
  const now = Date.now()
  const justExpired = kontrol.token('bob', AUD, { exp: Math.floor(now / 1000) - 5 })
  const lenient = await authedKite(t, { leeway: 30 })
  const c1 = await connectClient(t, lenient.url, { auth: { type: 'token', key: justExpired } })
  t.same(await c1.tell('whoami'), { username: 'bob', remote: 'bob' })
  const strict = await authedKite(t)
  const c2 = await connectClient(t, strict.url, { auth: { type: 'token', key: justExpired } })
  await t.rejects(c2.tell('whoami'), { type: 'authenticationError', message: 'token: token is expired', code: 'KITE_ERR_AUTH_TOKEN_EXPIRED' }, 'the answer says so by code, the wire text unchanged')
  await t.rejects(c2.tell('whoami'), { message: 'token: token is expired', code: 'KITE_ERR_AUTH_TOKEN_EXPIRED' }, 'and again from the cached failure')
})

t.test('a cached token stops working when it expires', async (t) => {
  let now = Date.now()
  const { url } = await authedKite(t, { clock: () => now })
  const key = kontrol.token('bob', AUD, { exp: Math.floor(now / 1000) + 60 })
  const c = await connectClient(t, url, { auth: { type: 'token', key } })
  t.same(await c.tell('whoami'), { username: 'bob', remote: 'bob' })
  now += 61_000
  await t.rejects(c.tell('whoami'), { type: 'authenticationError', message: 'token: token is expired' })
})

t.test('at least 30 forged or invalid credentials are all refused with authenticationError', async (t) => {
  // One connection sends them all: the close after repeated failures (tested in abuse.test.ts) is off here.
  const { app, url } = await authedKite(t, {}, { maxAuthFailures: 0 })
  const sec = Math.floor(Date.now() / 1000)
  const other = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  const goodToken = kontrol.token('bob', AUD)
  const [h, p, s] = goodToken.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
  const tokenClaims = (extra: Record<string, unknown>) => ({ ...claims, ...extra })
  const keyClaims = { iss: kontrol.issuer, sub: 'bob', iat: sec - 300, jti: 'x', kontrolKey: kontrol.publicKey }
  const rs = { alg: 'RS256', typ: 'JWT' }
  const cases: Array<[string, unknown, unknown, RegExp]> = [
    ['alg none token', 'token', signJwt({ alg: 'none', typ: 'JWT' }, claims, null), /unexpected signing method/],
    ['alg none kite.key', 'kiteKey', signJwt({ alg: 'none' }, keyClaims, null), /unexpected signing method/],
    ['alg NONE (case) token', 'token', signJwt({ alg: 'NONE' }, claims, null), /unexpected signing method/],
    ['HS256 token signed with the Kontrol public key as secret', 'token', signJwt({ alg: 'HS256', typ: 'JWT' }, claims, kontrol.publicKey), /unexpected signing method/],
    ['HS256 kite.key signed with the Kontrol public key as secret', 'kiteKey', signJwt({ alg: 'HS256' }, keyClaims, kontrol.publicKey), /unexpected signing method/],
    ['RS384 token signed by the trusted key (algorithm not pinned)', 'token', signJwt({ alg: 'RS384' }, claims, kontrol.privateKey), /unexpected signing method/],
    ['PS256 token signed by the trusted key', 'token', signJwt({ alg: 'PS256' }, claims, kontrol.privateKey), /unexpected signing method/],
    ['token signed by another RSA key', 'token', signJwt(rs, claims, other.privateKey), /token is expired/],
    ['token signed by an attacker Kontrol with the same issuer name', 'token', attacker.token('bob', AUD), /token is expired/],
    ['kite.key signed by another key naming the trusted key', 'kiteKey', signJwt(rs, keyClaims, other.privateKey), /signature is invalid/],
    ['kite.key whose kontrolKey is swapped for the attacker key', 'kiteKey', attacker.kiteKey('bob'), /kontrol key is not trusted/],
    ['kite.key with no kontrolKey', 'kiteKey', signJwt(rs, { ...keyClaims, kontrolKey: undefined }, kontrol.privateKey), /no kontrol key found/],
    ['kite.key with a garbage kontrolKey', 'kiteKey', signJwt(rs, { ...keyClaims, kontrolKey: 'not a key' }, kontrol.privateKey), /kontrol key is not trusted/],
    ['kite.key with a huge kontrolKey', 'kiteKey', signJwt(rs, { ...keyClaims, kontrolKey: 'A'.repeat(9000) }, kontrol.privateKey), /kontrol key is not trusted|too large/],
    ['token with a tampered payload (sub changed)', 'token', `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'root' })).toString('base64url')}.${s}`, /token is expired/],
    ['token with a tampered signature', 'token', `${h}.${p}.${s.slice(0, -4)}AAAA`, /token is expired/],
    ['token with no signature', 'token', `${h}.${p}.`, /signature is missing/],
    ['kite.key with a tampered payload', 'kiteKey', (() => { const k = kontrol.kiteKey('bob').split('.'); return `${k[0]}.${Buffer.from(JSON.stringify({ ...keyClaims, sub: 'root' })).toString('base64url')}.${k[2]}` })(), /signature is invalid/],
    ['expired token', 'token', kontrol.token('bob', AUD, { exp: sec - 3600 }), /token is expired/],
    ['token not yet valid', 'token', kontrol.token('bob', AUD, { nbf: sec + 3600 }), /not valid yet/],
    ['token issued in the future', 'token', kontrol.token('bob', AUD, { iat: sec + 3600, nbf: undefined }), /before issued/],
    ['token with no expiry', 'token', kontrol.token('bob', AUD, { exp: undefined }), /no expiry/],
    ['token from an untrusted issuer', 'token', kontrol.token('bob', AUD, { iss: 'someone-else' }), /issuer is not trusted/],
    ['token with no issuer', 'token', kontrol.token('bob', AUD, { iss: undefined }), /no issuer/],
    ['token for another username', 'token', kontrol.token('bob', '/mallory/prod/math'), /username "mallory" not allowed/],
    ['token for another environment', 'token', kontrol.token('bob', '/alice/dev/math'), /environment "dev" not allowed/],
    ['token for another kite name', 'token', kontrol.token('bob', '/alice/prod/fs'), /kite "fs" not allowed/],
    ['token for another version', 'token', kontrol.token('bob', '/alice/prod/math/9.9.9'), /version "9.9.9" not allowed/],
    ['token with the root audience', 'token', kontrol.token('bob', '/'), /root audience/],
    ['token with an empty audience', 'token', kontrol.token('bob', ''), /no audience/],
    ['token with no audience', 'token', kontrol.token('bob', AUD, { aud: undefined }), /no audience/],
    ['token with an audience that is not a path', 'token', kontrol.token('bob', 'alice'), /invalid audience/],
    ['token with no sub', 'token', kontrol.token('bob', AUD, { sub: undefined }), /no username/],
    ['token with an empty sub', 'token', kontrol.token('', AUD), /no username/],
    ['kite.key with no sub', 'kiteKey', kontrol.kiteKey('bob', { sub: undefined }), /no username/],
    ['kite.key sent as a token (no audience)', 'token', kontrol.kiteKey('bob'), /no expiry|no audience/],
    ['token sent as a kite.key (no kontrolKey)', 'kiteKey', goodToken, /no kontrol key found/],
    ['an empty key', 'token', '', /no key given/],
    ['a huge key', 'token', `${h}.${'A'.repeat(100_000)}.${s}`, /too large/],
    ['a non-string key', 'token', 12345, /no key given/],
    ['an object as key', 'kiteKey', { forged: true }, /no key given/],
    ['a token with two parts', 'token', `${h}.${p}`, /malformed/],
    ['a token that is not base64', 'token', 'not.a.jwt!', /malformed/],
    ['a token whose payload is not JSON', 'token', `${h}.${Buffer.from('nope').toString('base64url')}.${s}`, /malformed/],
    ['an unknown authentication type', 'magic', goodToken, /Unknown authentication type: magic/],
    ['an authentication object with no type', undefined, goodToken, /./],
    ['no authentication at all', null, null, /No authentication information is provided/],
  ]
  t.ok(cases.length >= 30, `${cases.length} cases`)
  const { RawPeer } = await import('../helpers/raw-peer.js')
  const peer = await RawPeer.open(url.replace('http', 'ws'))
  t.teardown(() => peer.close())
  let id = 0
  for (const [name, type, key, expected] of cases) {
    const authentication = type === null ? null : type === undefined ? { key } : { type, key }
    const callId = id++
    peer.send(JSON.stringify({ method: 'whoami', arguments: [{ kite: null, authentication, responseCallback: '[Function]', withArgs: [] }], callbacks: { [callId]: [0, 'responseCallback'] } }))
    const frame = await peer.waitFor((f) => (JSON.parse(f) as { method: number }).method === callId)
    const answer = (JSON.parse(frame) as { arguments: [{ error: { type: string; message: string } | null; result: unknown }] }).arguments[0]
    if (type === undefined) {
      t.equal(answer.error?.type, 'argumentError', `${name}: refused as a malformed envelope`)
      continue
    }
    t.equal(answer.error?.type, 'authenticationError', `${name}: authenticationError`)
    t.match(answer.error?.message, expected, `${name}: says why`)
    t.equal(answer.result, null, `${name}: no result`)
    if (typeof key === 'string' && key.length > 20) t.notOk(answer.error?.message.includes(key), `${name}: the credential is not echoed`)
  }
  t.ok(app.kiteAuth.trustedKeyCount === 1)
})

t.test('options: trusted keys must be RSA public keys; the own kite.key is trusted for its issuer', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { kiteServer } = await import('../../plugins/kite-server/index.js')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'x', version: '1.0.0' })
  await t.rejects(async () => app.register(kiteAuth, { trustedKontrolKeys: ['not a pem'] }).ready(), /invalid kontrol key/)
  const own = await startKite(t, SELF, async (app) => {
    await app.register(kiteAuth, { kiteKey: kontrol.kiteKey('alice') })
    app.kite.handle('whoami', (req) => req.username)
  })
  const c = await connectClient(t, own.url, { auth: { type: 'token', key: kontrol.token('dave', AUD) } })
  t.equal(await c.tell('whoami'), 'dave', 'trusted through the kontrolKey of the kite.key given')
  const wrongIssuer = await connectClient(t, own.url, { auth: { type: 'token', key: kontrol.token('dave', AUD, { iss: 'impostor' }) } })
  await t.rejects(wrongIssuer.tell('whoami'), { message: 'token: issuer is not trusted: impostor' })
})

t.test('custom authenticators by type name, as options and at run time', async (t) => {
  const { app, url } = await authedKite(t, {
    authenticators: { sessionID: ({ authentication }) => (authentication.key === 's3cret' ? { username: 'session-user' } : Promise.reject(new Error('no such session'))) },
  })
  const ok = await connectClient(t, url, { auth: { type: 'sessionID', key: 's3cret' } })
  t.same(await ok.tell('whoami'), { username: 'session-user', remote: 'session-user' })
  const bad = await connectClient(t, url, { auth: { type: 'sessionID', key: 'guess' } })
  await t.rejects(bad.tell('whoami'), { type: 'authenticationError', message: 'sessionID: no such session' })
  app.kiteAuth.addAuthenticator('apiKey', async ({ authentication }) => ({ username: `key-${authentication.key}` }))
  const late = await connectClient(t, url, { auth: { type: 'apiKey', key: '7' } })
  t.same(await late.tell('whoami'), { username: 'key-7', remote: 'key-7' })
  // app.kiteAuth.authenticate() (Kontrol's HTTP /register uses it) knows the ones added after register too.
  const ctx = (type: string, key: string): AuthContext => ({ authentication: { type, key }, kite: app.kite.identity, method: 'register', connection: null })
  t.match(await app.kiteAuth.authenticate(ctx('apiKey', '8')), { username: 'key-8' }, 'added with app.kiteAuth.addAuthenticator')
  app.kite.addAuthenticator('ticket', async ({ authentication }) => ({ username: `ticket-${authentication.key}` }))
  t.match(await app.kiteAuth.authenticate(ctx('ticket', '9')), { username: 'ticket-9' }, 'added with app.kite.addAuthenticator')
  t.match(await app.kiteAuth.authenticate(ctx('sessionID', 's3cret')), { username: 'session-user' }, 'given as an option')
  await t.rejects(app.kiteAuth.authenticate(ctx('sessionID', 'guess')), { message: 'no such session' })
  await t.rejects(app.kiteAuth.authenticate(ctx('carrier-pigeon', 'x')), { message: 'Unknown authentication type: carrier-pigeon' })
})

t.test('a custom authenticator says a session expired by code: the caller gets the expired-token answer and renews', async (t) => {
  const { url } = await authedKite(t, {
    authenticators: {
      session: ({ authentication }) => {
        if (authentication.key === 'fresh') return { username: 'renewed' }
        throw Object.assign(new Error('session is over'), { code: 'KITE_ERR_AUTH_TOKEN_EXPIRED' })
      },
    },
  })
  const client = await connectClient(t, url, { auth: { type: 'session', key: 'stale' } })
  const expired = new Promise<void>((resolve) => client.once('tokenExpired', () => resolve()))
  await t.rejects(client.tell('whoami'), { type: 'authenticationError', message: 'session: token is expired', code: 'KITE_ERR_AUTH_TOKEN_EXPIRED' }, 'the text Go clients look for, and the code')
  await expired
  t.pass('the client fired tokenExpired')
  client.auth = { type: 'session', key: 'fresh' }
  t.same(await client.tell('whoami'), { username: 'renewed', remote: 'renewed' }, 'a new credential works on the same connection')
})

t.test('the real kite.key and token recorded from Go Kontrol decode and verify once their key is trusted', async (t) => {
  const { capture } = await import('../helpers/frames.js')
  const { decodeKiteKey, decodeJwt } = await import('../../lib/kitekey.js')
  const frames = capture('11').map((v) => v.frame).join('\n')
  const jwts = [...new Set(frames.match(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g))]
  const realKiteKey = jwts.find((j) => 'kontrolKey' in decodeJwt(j).claims)!
  const realToken = jwts.find((j) => 'aud' in decodeJwt(j).claims)!
  const claims = decodeKiteKey(realKiteKey)
  t.match(claims, { iss: 'devuser', sub: 'devuser', kontrolURL: 'http://127.0.0.1:14000/kite' })
  const tokenClaims = decodeJwt(realToken).claims as { aud: string; iat: number; sub: string }
  t.equal(tokenClaims.aud, '/devuser/unknown/math')
  // Recorded tokens expire; verify them at the time they were issued.
  const at = (tokenClaims.iat + 60) * 1000
  const untrusted = await startKite(t, { username: 'devuser', environment: 'unknown', name: 'math' }, async (app) => {
    await app.register(kiteAuth, { kiteKey: false, clock: () => at })
    app.kite.handle('whoami', (req) => req.username)
  })
  const c0 = await connectClient(t, untrusted.url, { auth: { type: 'kiteKey', key: realKiteKey } })
  await t.rejects(c0.tell('whoami'), { message: 'kiteKey: kontrol key is not trusted' }, 'not trusted merely because the token names it')
  const trusted = await startKite(t, { username: 'devuser', environment: 'unknown', name: 'math' }, async (app) => {
    await app.register(kiteAuth, { trustedKontrolKeys: [claims.kontrolKey!], kiteKey: false, clock: () => at })
    app.kite.handle('whoami', (req) => req.username)
  })
  const c1 = await connectClient(t, trusted.url, { auth: { type: 'kiteKey', key: realKiteKey } })
  t.equal(await c1.tell('whoami'), 'devuser', 'the real kite.key verifies')
  const c2 = await connectClient(t, trusted.url, { auth: { type: 'token', key: realToken } })
  t.equal(await c2.tell('whoami'), 'devuser', 'the real token verifies for /devuser/unknown/math')
})

t.test('a kite.js client calls an authenticated method with a valid token', async (t) => {
  const { url } = await authedKite(t)
  const key = kontrol.token('kitejs-user', AUD, { exp: Math.floor(Date.now() / 1000) + 3600 })
  for (const transport of ['ws', 'sockjs-ws'] as const) {
    const kite = kitejs.connectKite(transport === 'ws' ? url.replace('http', 'ws') : url.replace(/\/kite$/, ''), { transport, prefix: transport === 'ws' ? undefined : '/kite', auth: { type: 'token', key } })
    t.same(await kite.tell('whoami', []), { username: 'kitejs-user', remote: 'kitejs-user' }, transport)
    await kitejs.closeKite(kite)
  }
  const noToken = kitejs.connectKite(url.replace('http', 'ws'), { transport: 'ws' })
  t.teardown(() => kitejs.closeKite(noToken))
  await t.rejects(noToken.tell('whoami', []), { name: 'KiteError', type: 'authenticationError' })
})
