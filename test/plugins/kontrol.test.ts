import t from 'tap'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { KiteClient } from '../../lib/client/client.js'
import { decodeJwt } from '../../lib/kitekey.js'
import type { GetKitesResult, KiteEventMessage } from '../../lib/protocol/kontrol.js'
import { MemoryStorage } from '../../plugins/kontrol/storage/memory.js'
import { eventually, startKontrol, startRegisteredKite } from '../helpers/kontrol.js'

const require = createRequire(import.meta.url)

/** A client of Kontrol itself, authenticated with a kite.key. */
async function kontrolClient(t: Tap.Test, url: string, kiteKey: string, name = 'finder'): Promise<KiteClient> {
  const c = new KiteClient(url, { auth: { type: 'kiteKey', key: kiteKey }, kite: { name, username: (decodeJwt(kiteKey).claims.sub as string) } })
  t.teardown(() => c.close())
  await c.connect()
  return c
}

/**
 * Kontrol's clock, held still unless a test moves it: nothing expires by
 * itself, so a kite that goes has gone because of what the test did, and
 * expiry is tested by moving the clock, never by waiting.
 */
function stillClock(): { clock: () => number; storage: MemoryStorage; advance: (ms: number) => void } {
  let now = Date.now()
  const clock = (): number => now
  return { clock, storage: new MemoryStorage(clock), advance: (ms) => void (now += ms) }
}

async function find(c: KiteClient, query: Record<string, string>): Promise<GetKitesResult['kites']> {
  return ((await c.tell('getKites', { query })) as GetKitesResult).kites
}

t.test('register, find by partial query and by version constraint, call with the issued token', async (t) => {
  const k = await startKontrol(t)
  const math = await startRegisteredKite(t, k.url, k.kiteKey('alice'))
  const finder = await kontrolClient(t, k.url, k.kiteKey('bob'))
  const byName = await find(finder, { username: 'alice', name: 'math' })
  t.equal(byName.length, 1)
  const [found] = byName
  t.same(found!.kite, math.app.kite.identity)
  t.equal(found!.url, math.url)
  const claims = decodeJwt(found!.token).claims
  t.match(claims, { iss: 'kontrol-owner', sub: 'bob', aud: '/alice/test/math' })
  t.ok(Math.abs((claims.exp as number) - (claims.iat as number) - (48 * 3600 + 600)) <= 1, 'iat backdated 5 min, exp 48 h + 5 min ahead')
  t.equal((await find(finder, { username: 'alice', name: 'math', version: '>= 1.0, < 1.4' })).length, 1)
  t.equal((await find(finder, { username: 'alice', name: 'math', version: '~> 1.0' })).length, 1)
  t.equal((await find(finder, { username: 'alice', name: 'math', version: '~> 2.0' })).length, 0)
  t.equal((await find(finder, { username: 'alice', region: 'unk' })).length, 0, 'region matches exactly, never by prefix')
  t.equal((await find(finder, { id: math.app.kite.identity.id })).length, 1)
  await t.rejects(finder.tell('getKites', { query: {} }), { code: 'KITE_ERR_KONTROL_INVALID', message: 'all query fields are empty' })
  await t.rejects(finder.tell('getKites', { query: { version: '>= 1.0' } }), { code: 'KITE_ERR_KONTROL_INVALID', message: /needs another query field/ })
  await t.rejects(finder.tell('getKites', { query: { name: 'math', version: '>=> 1' } }), { code: 'KITE_ERR_KONTROL_INVALID', message: /Malformed constraint/ })
  const client = new KiteClient(found!.url, { auth: { type: 'token', key: found!.token } })
  t.teardown(() => client.close())
  await client.connect()
  t.equal(await client.tell('secret'), 'hello bob', 'the token authenticates bob at the kite')
  const token = (await finder.tell('getToken', { id: math.app.kite.identity.id })) as string
  t.equal(decodeJwt(token).claims.aud, '/alice/test/math', 'an id-only query never yields the root audience')
  await t.rejects(finder.tell('getToken', { name: 'nothing' }), { code: 'KITE_ERR_KONTROL_NO_KITES' })
})

t.test('app.kite.getKites returns clients carrying tokens; getToken is cached', async (t) => {
  const k = await startKontrol(t)
  await startRegisteredKite(t, k.url, k.kiteKey('alice'))
  const caller = await startRegisteredKite(t, k.url, k.kiteKey('carol'), { name: 'caller' })
  const clients = await caller.app.kite.getKites({ username: 'alice', name: 'math' })
  t.equal(clients.length, 1)
  const [math] = clients
  t.teardown(() => math!.close())
  await math!.connect()
  t.equal(await math!.tell('secret'), 'hello carol')
  const t1 = await caller.app.kite.getToken({ username: 'alice', name: 'math' })
  t.equal(await caller.app.kite.getToken({ username: 'alice', name: 'math' }), t1, 'cached')
  const forced = await caller.app.kite.getToken({ username: 'alice', name: 'math' }, true)
  t.not(forced, t1, 'force asks for a new one')
  // Finding nothing: Kontrol answers an empty list on the wire (as Go Kontrol), the
  // finder rejects with KITE_ERR_KONTROL_NO_KITES (as Go's kontrolclient, ErrNoKitesAvailable).
  await t.rejects(caller.app.kite.getKites({ username: 'alice', name: 'nothing' }), { name: 'KiteError', code: 'KITE_ERR_KONTROL_NO_KITES', type: 'genericError', message: 'no kites found' })
  const finder = await kontrolClient(t, k.url, k.kiteKey('bob'))
  t.same(await find(finder, { username: 'alice', name: 'nothing' }), [], 'the wire answer stays an empty list')
})

t.test('watch: REGISTER and DEREGISTER events for the query', async (t) => {
  // Kontrol's clock stands still: the DEREGISTER can only come from the clean close, not from expiry.
  const { clock, storage } = stillClock()
  const k = await startKontrol(t, { clock, storage })
  const finder = await kontrolClient(t, k.url, k.kiteKey('bob'))
  const events: KiteEventMessage[] = []
  const waiters: Array<() => void> = []
  const next = (action: string): Promise<KiteEventMessage> => new Promise((resolve) => {
    const look = (): void => {
      const e = events.find((x) => x.action === action)
      if (e !== undefined) resolve(e)
      else waiters.push(look)
    }
    look()
  })
  const watch = (e: KiteEventMessage): void => {
    events.push(e)
    waiters.splice(0).forEach((w) => w())
  }
  const initial = (await finder.tell('getKites', { query: { username: 'alice', name: 'math' }, watchCallback: watch })) as GetKitesResult
  t.same(initial.kites, [])
  const math = await startRegisteredKite(t, k.url, k.kiteKey('alice'))
  const reg = await next('REGISTER')
  t.same(reg.kite, math.app.kite.identity)
  t.equal(decodeJwt(reg.token!).claims.aud, '/alice/test/math')
  const other = await startRegisteredKite(t, k.url, k.kiteKey('dave'))
  await math.app.close()
  const dereg = await next('DEREGISTER')
  t.same(dereg.kite, math.app.kite.identity, 'DEREGISTER after a clean close, with no time passing on Kontrol\'s clock')
  t.notOk(events.some((e) => e.kite.id === other.app.kite.identity.id), 'kites outside the query are not reported')
})

t.test('a kite that closes cleanly disappears at once; kill -9 too; a frozen one after interval + grace', async (t) => {
  // Kontrol's clock stands still until the frozen kite: the first two go because their sockets close, not by expiry.
  const { clock, storage, advance } = stillClock()
  const k = await startKontrol(t, { clock, storage })
  const finder = await kontrolClient(t, k.url, k.kiteKey('bob'))
  const closing = await startRegisteredKite(t, k.url, k.kiteKey('alice'), { name: 'closing' })
  t.equal((await find(finder, { username: 'alice', name: 'closing' })).length, 1)
  await closing.app.close()
  await eventually(async () => (await find(finder, { username: 'alice', name: 'closing' })).length === 0, 10_000)
  t.pass('app.close() deregisters')

  const fixture = fileURLToPath(new URL('../fixtures/registered-kite.mjs', import.meta.url))
  const run = (name: string) => {
    const child = spawn(process.execPath, [fixture], { env: { ...process.env, KONTROL_URL: k.url, KITE_KEY: k.kiteKey('alice'), KITE_NAME: name }, stdio: ['ignore', 'pipe', 'inherit'] })
    t.teardown(() => child.kill('SIGKILL'))
    return new Promise<typeof child>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('registered') && resolve(child)))
  }
  const killed = await run('killed')
  t.equal((await find(finder, { username: 'alice', name: 'killed' })).length, 1)
  killed.kill('SIGKILL')
  await eventually(async () => (await find(finder, { username: 'alice', name: 'killed' })).length === 0, 10_000)
  t.pass('kill -9: gone, since its socket closes')

  const frozen = await run('frozen')
  t.equal((await find(finder, { username: 'alice', name: 'frozen' })).length, 1)
  frozen.kill('SIGSTOP')
  t.teardown(() => frozen.kill('SIGCONT'))
  // interval + grace = 2 s on Kontrol's clock; moved on each try, in case a ping sent before the stop arrives late.
  await eventually(async () => {
    advance(2001)
    await k.app.kontrol.registry.sweep()
    return (await find(finder, { username: 'alice', name: 'frozen' })).length === 0 && (await storage.count()) === 0
  }, 10_000)
  t.pass('a kite that stops answering is gone once interval + grace have passed, its row removed')
})

t.test('restarting Kontrol: every kite is back within one heartbeat interval plus backoff', async (t) => {
  const dir = t.testdir()
  const storage = `sqlite:${dir}/kontrol.db`
  const first = await startKontrol(t, { storage })
  const port = Number(new URL(first.url).port)
  const key = first.kiteKey('alice')
  const a = await startRegisteredKite(t, first.url, key, { name: 'a' })
  const b = await startRegisteredKite(t, first.url, key, { name: 'b' })
  await first.app.close()
  const second = await startKontrol(t, { storage }, port)
  const finder = await kontrolClient(t, second.url, second.kiteKey('bob'))
  // Expected within one heartbeat interval (1 s) plus backoff (≤ 300 ms); waited for generously, as the machine may be busy.
  await eventually(async () => (await find(finder, { username: 'alice', environment: 'test' })).length === 2, 15_000)
  t.ok(a.app.kontrolRegister.registered && b.app.kontrolRegister.registered, 'both back')
})

t.test('a user cannot take over another user\'s kite id; a kite.key of a retired pair gets a fresh one', async (t) => {
  const k = await startKontrol(t)
  const alice = await startRegisteredKite(t, k.url, k.kiteKey('alice'))
  const mallory = new KiteClient(k.url, { auth: { type: 'kiteKey', key: k.kiteKey('mallory') }, kite: { ...alice.app.kite.identity, username: 'mallory' } })
  t.teardown(() => mallory.close())
  await mallory.connect()
  await t.rejects(mallory.tell('register', { url: 'http://127.0.0.1:1/kite' }), { code: 'KITE_ERR_KONTROL_ID_TAKEN' })
  const finder = await kontrolClient(t, k.url, k.kiteKey('bob'))
  t.equal((await find(finder, { id: alice.app.kite.identity.id }))[0]!.url, alice.url, 'the registration is untouched')

  const oldKey = k.kiteKey('erin')
  const oldPair = k.app.kontrol.keys.current
  await k.app.kontrol.keys.retire(oldPair.id)
  const erin = new KiteClient(k.url, { auth: { type: 'kiteKey', key: oldKey }, kite: { name: 'e', username: 'erin' } })
  t.teardown(() => erin.close())
  await erin.connect()
  const result = (await erin.tell('register', { url: 'http://127.0.0.1:2/kite' })) as { kiteKey?: string; publicKey?: string; heartbeatInterval: number }
  t.equal(result.heartbeatInterval, 0)
  t.equal(result.publicKey, k.app.kontrol.keys.current.public)
  t.equal(decodeJwt(result.kiteKey!).claims.sub, 'erin')
  t.equal(decodeJwt(result.kiteKey!).claims.kontrolKey, k.app.kontrol.keys.current.public)
  t.equal(await erin.tell('getKey'), k.app.kontrol.keys.current.public, 'getKey of a retired key answers the current key')
})

t.test('HTTP registration and /heartbeat', async (t) => {
  const k = await startKontrol(t)
  const kite = await startRegisteredKite(t, k.url, k.kiteKey('alice'), { name: 'httpkite' }, { http: true })
  const finder = await kontrolClient(t, k.url, k.kiteKey('bob'))
  t.equal((await find(finder, { username: 'alice', name: 'httpkite' })).length, 1)
  const base = k.url.replace(/\/kite$/, '')
  t.equal(await (await fetch(`${base}/heartbeat?id=${kite.app.kite.identity.id}`)).text(), 'pong')
  t.equal(await (await fetch(`${base}/heartbeat?id=unknown`)).text(), 'registeragain')
  const empty = await fetch(`${base}/heartbeat`)
  t.equal(empty.status, 400)
  t.equal(await empty.text(), 'query id is empty')
  const post = (body: unknown) => fetch(`${base}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const noAuth = await post({ url: 'http://x/kite', kite: kite.app.kite.identity })
  t.equal(noAuth.status, 400)
  t.match(await noAuth.text(), /auth is missing/)
  t.equal((await post({ url: 'http://x/kite' })).status, 400, 'a missing kite is a 400, not a crash')
  const forged = await post({ url: 'http://x/kite', kite: { ...kite.app.kite.identity, id: 'f' }, auth: { type: 'kiteKey', key: 'a.b.c' } })
  t.equal(forged.status, 401)
  const token = await post({ url: 'http://x/kite', kite: kite.app.kite.identity, auth: { type: 'token', key: 'x' } })
  t.equal(token.status, 400)
  t.match(await token.text(), /unexpected authentication type/)
})

t.test('kite.js Kontrol client finds a kite registered with our Kontrol and calls it', async (t) => {
  const k = await startKontrol(t)
  await startRegisteredKite(t, k.url, k.kiteKey('alice'))
  const { Kite } = require('../helpers/kitejs.cjs') as { Kite: { transport: { SockJS: unknown } } }
  const Kontrol = require('kite.js/lib/kontrol') as new (o: Record<string, unknown>) => {
    fetchKite(args: unknown): Promise<{ connect(): void; tell(m: string, a: unknown[], cb: (err: unknown, result: unknown) => void): void; disconnect(): void; on(e: string, f: () => void): void }>
    disconnect(): void
    on(e: string, f: () => void): void
  }
  const kontrolJs = new Kontrol({ url: k.url, auth: { type: 'kiteKey', key: k.kiteKey('kitejs-user') }, transportClass: Kite.transport.SockJS, transportOptions: { transports: ['websocket'] }, autoReconnect: false, logLevel: 0, username: 'kitejs-user' })
  kontrolJs.on('error', () => {})
  t.teardown(() => kontrolJs.disconnect())
  const kite = await kontrolJs.fetchKite({ query: { username: 'alice', environment: 'test', name: 'math' } })
  kite.on('error', () => {})
  t.teardown(() => kite.disconnect())
  kite.connect()
  // The kites kite.js's Kontrol hands out are callback-style.
  const tell = (method: string, args: unknown[]) => new Promise((resolve, reject) => kite.tell(method, args, (err, result) => (err ? reject(err) : resolve(result))))
  t.equal(await tell('square', [4]), 16)
  t.equal(await tell('secret', []), 'hello kitejs-user', 'with the token Kontrol issued')
})

t.test('tokens handed out by getKites renew before they expire, and when a call says they expired', async (t) => {
  const k = await startKontrol(t, { tokenTTL: 2, tokenLeeway: 1 })
  await startRegisteredKite(t, k.url, k.kiteKey('alice'))
  const caller = await startRegisteredKite(t, k.url, k.kiteKey('carol'), { name: 'caller' }, { renewBefore: 2 })
  const [math] = await caller.app.kite.getKites({ username: 'alice', name: 'math' })
  t.teardown(() => math!.close())
  await math!.connect()
  const first = math!.auth!.key
  t.equal(await math!.tell('secret'), 'hello carol')
  await eventually(() => math!.auth!.key !== first, 3000)
  t.pass('renewed before expiry, without reconnecting')
  t.equal(await math!.tell('secret'), 'hello carol')
})

t.test('readiness follows registration when systeminfo and kontrol-register are used together', async (t) => {
  const { systemInfo } = await import('../../plugins/systeminfo/index.js')
  const k = await startKontrol(t)
  const kite = await startRegisteredKite(t, k.url, k.kiteKey('alice'), { name: 'ready' }, {}, )
  t.ok(kite.app.kontrolRegister.registered)
  const Fastify = (await import('fastify')).default
  const { kiteServer } = await import('../../plugins/kite-server/index.js')
  const { kiteAuth } = await import('../../plugins/kite-auth/index.js')
  const { kontrolRegister } = await import('../../plugins/kontrol-register/index.js')
  const app = Fastify()
  t.teardown(() => app.close())
  const key = k.kiteKey('alice')
  await app.register(kiteServer, { name: 'probe', version: '1.0.0' })
  await app.register(kiteAuth, { kiteKey: key })
  await app.register(systemInfo)
  await app.register(kontrolRegister, { kontrolURL: 'http://127.0.0.1:1/kite', kiteKey: key, backoff: { initialMs: 50, maxMs: 100 } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const ready = await fetch(`${base}/health/ready`)
  t.equal(ready.status, 503, 'not ready while Kontrol cannot be reached')
  t.match(await ready.json(), { status: 'not-ready' })
})

t.test('a kite forgotten during a stall of Kontrol, that pings again, is registered again', async (t) => {
  const { clock, storage, advance } = stillClock()
  const k = await startKontrol(t, { clock, storage })
  const kite = await startRegisteredKite(t, k.url, k.kiteKey('alice'), { name: 'stalled' })
  const finder = await kontrolClient(t, k.url, k.kiteKey('bob'))
  t.equal((await find(finder, { username: 'alice', name: 'stalled' })).length, 1)
  // A stall longer than interval + grace (2 s), as Kontrol sees it: its clock jumps and its sweep finds no ping since.
  advance(3000)
  await k.app.kontrol.registry.sweep()
  t.equal(k.app.kontrol.registry.size, 0, 'forgotten')
  t.equal((await find(finder, { username: 'alice', name: 'stalled' })).length, 0)
  // Its next heartbeat (every second, over the same connection) registers it again.
  await eventually(async () => k.app.kontrol.registry.size === 1 && (await find(finder, { username: 'alice', name: 'stalled' })).length === 1, 10_000)
  t.pass('back over the same connection')
  t.ok(kite.app.kontrolRegister.registered)
})
