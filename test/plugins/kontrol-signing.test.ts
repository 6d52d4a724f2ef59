import t from 'tap'
import { createRequire } from 'node:module'
import { KiteClient } from '../../lib/client/client.js'
import { kiteError } from '../../lib/errors.js'
import { decodeJwt } from '../../lib/kitekey.js'
import type { GetKitesResult, KiteEventMessage } from '../../lib/protocol/kontrol.js'
import { KontrolKeys } from '../../plugins/kontrol/keys.js'
import { Registry } from '../../plugins/kontrol/registry.js'
import { KontrolService } from '../../plugins/kontrol/service.js'
import { JwtSigner } from '../../plugins/kontrol/signer.js'
import { MemoryStorage } from '../../plugins/kontrol/storage/memory.js'
import type { KeyPairRecord } from '../../plugins/kontrol/storage/storage.js'
import { TokenIssuer } from '../../plugins/kontrol/tokens.js'
import { testKeyPair } from '../../testing.js'
import { capture } from '../helpers/frames.js'
import { startKontrol } from '../helpers/kontrol.js'

const require = createRequire(import.meta.url)
/** kite.js's own token check: jwt-simple's RS256 verification with the kite.key's kontrolKey. */
const kiteJsVerify = require('kite.js/lib/kite/token') as (token: string, kiteKey: string) => { headers: Record<string, unknown>; claims: Record<string, unknown> }

type Kontrol = Awaited<ReturnType<typeof startKontrol>>

/** Stores kites alice/test/<name> directly (as another Kontrol on the same database would), under Kontrol's current pair. */
async function addKites(k: Kontrol, names: string[]): Promise<void> {
  const keyId = k.app.kontrol.keys.current.id
  for (const name of names) {
    await k.app.kontrol.storage.upsert({ username: 'alice', environment: 'test', name, version: '1.0.0', region: 'eu', hostname: 'h', id: `id-${name}` }, { url: `http://127.0.0.1:1/${name}`, keyId })
  }
}

async function client(t: Tap.Test, k: Kontrol, user: string): Promise<KiteClient> {
  const c = new KiteClient(k.url, { transport: 'websocket', auth: { type: 'kiteKey', key: k.kiteKey(user) }, kite: { name: 'finder', username: user } })
  t.teardown(() => c.close())
  await c.connect()
  return c
}

const signed = (k: Kontrol): number => k.app.kontrol.stats().tokensSigned

for (const signingThreads of [undefined, 0]) {
  t.test(`tokens and kite.keys signed ${signingThreads === 0 ? 'on the event loop' : 'on the thread pool'} are the RS256 JWTs Go and kite.js verify`, async (t) => {
    const k = await startKontrol(t, signingThreads === undefined ? {} : { signingThreads })
    await addKites(k, ['math'])
    const kiteKey = k.kiteKey('bob')
    const finder = await client(t, k, 'bob')
    const [found] = ((await finder.tell('getKites', { query: { username: 'alice', name: 'math' } })) as GetKitesResult).kites
    const token = found!.token
    const goToken = (capture('11').flatMap((v) => v.messages).find((m) => m.method === 0 && JSON.stringify(m.arguments).includes('"kites"'))!.arguments[0] as { result: { kites: Array<{ token: string }> } }).result.kites[0]!.token
    t.equal(token.split('.')[0], goToken.split('.')[0], 'the header is byte for byte the one Go Kontrol writes: {"alg":"RS256","typ":"JWT"}')
    t.same(Object.keys(decodeJwt(token).claims).sort(), Object.keys(decodeJwt(goToken).claims).sort(), 'the claims Go Kontrol puts in a token')
    const { claims } = kiteJsVerify(token, kiteKey)
    t.match(claims, { iss: 'kontrol-owner', sub: 'bob', aud: '/alice/test/math' }, 'kite.js verifies the signature with the kontrolKey of its kite.key')
    const registered = (await finder.tell('registerMachine', {})) as string
    t.match(kiteJsVerify(registered, kiteKey).claims, { iss: 'kontrol-owner', sub: 'bob', kontrolKey: k.app.kontrol.keys.current.public }, 'a renewed kite.key too')
  })
}

t.test('concurrent requests for one token share one signing', async (t) => {
  const k = await startKontrol(t)
  await addKites(k, ['math', 'other'])
  const finder = await client(t, k, 'bob')
  const before = signed(k)
  const tokens = await Promise.all(Array.from({ length: 20 }, () => finder.tell('getToken', { username: 'alice', name: 'math' }) as Promise<string>))
  t.equal(new Set(tokens).size, 1, 'all twenty callers got the same token')
  t.equal(signed(k) - before, 1, 'signed once')
  const forced = (await finder.tell('getToken', { username: 'alice', name: 'math', force: true })) as string
  t.not(forced, tokens[0], 'force signs a new one')
  t.equal(await finder.tell('getToken', { username: 'alice', name: 'math' }), forced, 'which is cached in turn')
})

t.test('the token cache is bounded (least recently used go first) and its tokens expire by Kontrol\'s clock', async (t) => {
  let now = Date.now()
  const clock = (): number => now
  const k = await startKontrol(t, { storage: new MemoryStorage(clock), clock, tokenCacheSize: 2, tokenTTL: 100, tokenLeeway: 10, heartbeatInterval: 3600, heartbeatGrace: 3600 })
  await addKites(k, ['a', 'b', 'c'])
  const finder = await client(t, k, 'bob')
  const token = (name: string): Promise<string> => finder.tell('getToken', { username: 'alice', name }) as Promise<string>
  const a = await token('a')
  const b = await token('b')
  t.equal(await token('a'), a, 'a is cached, and now used more recently than b')
  const before = signed(k)
  await token('c')
  t.equal(signed(k) - before, 1)
  t.equal(await token('a'), a, 'a stayed')
  t.not(await token('b'), b, 'b, the least recently used, went when c came')
  const a2 = await token('a')
  t.equal(a2, a)
  now += 90_000 - 1
  t.equal(await token('a'), a, 'kept while it has more than two leeways (20 s) of its 100 s left')
  now += 1
  t.not(await token('a'), a, 'then a new one is signed')
})

t.test('with signing on the thread pool, Kontrol answers a ping while a getKites that needs 300 new tokens is signing', async (t) => {
  const k = await startKontrol(t)
  const names = Array.from({ length: 300 }, (_, i) => `k${i}`)
  await addKites(k, names)
  const finder = await client(t, k, 'bob')
  const pinger = await client(t, k, 'carol')
  const before = signed(k)
  let answered = false
  const many = finder.tell('getKites', { query: { username: 'alice', environment: 'test' } }).then((r) => {
    answered = true
    return r as GetKitesResult
  })
  while (signed(k) === before) await new Promise((resolve) => setImmediate(resolve))
  t.equal(await pinger.tell('kite.ping'), 'pong')
  t.notOk(answered, 'the ping was answered before the getKites')
  t.ok(signed(k) - before < names.length, `while tokens were still being signed (${signed(k) - before} of ${names.length})`)
  const { kites } = await many
  t.equal(new Set(kites.map((x) => decodeJwt(x.token).claims.aud)).size, names.length, 'one token per audience')
})

t.test('a key pair whose private half is unusable, or is not the public half\'s, is refused at start', async (t) => {
  const good = testKeyPair()
  const other = testKeyPair({ fresh: true })
  for (const [what, keyPair] of [
    ['not a private key', { publicKey: good.publicKey, privateKey: 'not a key' }],
    ['halves of two pairs', { publicKey: good.publicKey, privateKey: other.privateKey }],
    ['a public key without its private key', { publicKey: good.publicKey }],
  ] as const) {
    await t.rejects(startKontrol(t, { keyPair }), { name: 'KiteError', code: 'KITE_ERR_KONTROL_KEY_PAIR' }, what)
  }
})

t.test('a signing that fails rejects with KITE_ERR_KONTROL_SIGN, is not cached, and the next request signs again', async (t) => {
  const { publicKey, privateKey } = testKeyPair()
  const broken: KeyPairRecord = { id: 'broken', public: publicKey, private: 'not a key', deletedAt: null }
  const good: KeyPairRecord = { id: 'good', public: publicKey, private: privateKey, deletedAt: null }
  for (const threads of [2, 0]) {
    const signer = new JwtSigner(threads)
    await t.rejects(signer.sign({ sub: 'x' }, broken), { code: 'KITE_ERR_KONTROL_SIGN', message: /^kontrol cannot sign: key pair broken/ }, `${threads} threads`)
    t.throws(() => signer.signSync({ sub: 'x' }, broken), { code: 'KITE_ERR_KONTROL_SIGN' })
    const tokens = new TokenIssuer({ issuer: 'k', kontrolURL: () => 'http://k', ttlMs: 60_000, leewayMs: 1000, cacheSize: 10, clock: Date.now, signer })
    await t.rejects(tokens.token('/a', 'bob', broken), { code: 'KITE_ERR_KONTROL_SIGN' })
    await t.rejects(tokens.token('/a', 'bob', broken), { code: 'KITE_ERR_KONTROL_SIGN' }, 'tried again, not answered from a cache')
    t.equal(tokens.signed, 0)
    t.equal(tokens.cached, 0)
    t.equal(decodeJwt(await tokens.token('/a', 'bob', good)).claims.aud, '/a')
  }
})

t.test('a watcher hears no REGISTER event for a kite whose token cannot be signed; it hears the next one', async (t) => {
  const storage = new MemoryStorage()
  t.teardown(() => storage.close())
  const { publicKey, privateKey } = testKeyPair()
  const log = { warn: () => {}, info: () => {} } as never
  const keys = await KontrolKeys.load(storage, { publicKey, privateKey }, log)
  // Signing fails for the first kite only (a stand-in: a real pair that cannot sign is refused at start).
  class FlakySigner extends JwtSigner {
    override sign(claims: Record<string, unknown>, pair: KeyPairRecord): Promise<string> {
      return claims.aud === '/alice/test/first' ? Promise.reject(kiteError('KITE_ERR_KONTROL_SIGN', 'no')) : super.sign(claims, pair)
    }
  }
  const tokens = new TokenIssuer({ issuer: 'k', kontrolURL: () => 'http://k', ttlMs: 60_000, leewayMs: 1000, cacheSize: 10, clock: Date.now, signer: new FlakySigner(1) })
  const registry = new Registry(storage, { heartbeatSeconds: 10, ttlMs: 20_000, slackMs: 1000, sweepMs: 1000, clock: Date.now, log })
  const service = new KontrolService(storage, registry, keys, tokens)
  const events: KiteEventMessage[] = []
  let heard: () => void = () => {}
  const stop = service.watch({ username: 'alice' }, 'bob', (e) => {
    events.push(e)
    heard()
  })
  t.teardown(stop)
  const kite = (name: string) => ({ username: 'alice', environment: 'test', name, version: '1.0.0', region: 'eu', hostname: 'h', id: `id-${name}` })
  await registry.register(kite('first'), 'http://127.0.0.1:1/kite', keys.current.id, null)
  const next = new Promise<void>((resolve) => (heard = resolve))
  await registry.register(kite('second'), 'http://127.0.0.1:2/kite', keys.current.id, null)
  await next
  t.same(events.map((e) => [e.action, e.kite.name]), [['REGISTER', 'second']])
  t.equal(decodeJwt(events[0]!.token!).claims.aud, '/alice/test/second')
})

t.test('signings beyond signingThreads wait their turn, and each comes out signed by its own claims', async (t) => {
  const { publicKey, privateKey } = testKeyPair()
  const pair: KeyPairRecord = { id: 'p', public: publicKey, private: privateKey, deletedAt: null }
  const signer = new JwtSigner(1)
  const tokens = await Promise.all(Array.from({ length: 8 }, (_, i) => signer.sign({ sub: `user${i}` }, pair)))
  const kiteKey = signer.signSync({ iss: 'k', sub: 'x', kontrolKey: publicKey }, pair)
  t.same(tokens.map((x) => kiteJsVerify(x, kiteKey).claims.sub), Array.from({ length: 8 }, (_, i) => `user${i}`))
})
