import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import t, { type Test } from 'tap'
import { KITE_FIELDS, type KiteIdentity } from '../../lib/protocol/kite.js'
import {
  MemoryStorage, openStorage,
  type ExactQuery, type KeyPairRecord, type KiteEvent, type KontrolStorage, type PostgresStorageOptions,
} from '../../plugins/kontrol/storage/index.js'
import { PostgresStorage } from '../../plugins/kontrol/storage/postgres.js'
import { SqliteStorage } from '../../plugins/kontrol/storage/sqlite.js'

import { goKontrolDatabase, sql as goSQL } from '../helpers/go-kontrol.js'

// The contract runs four times, once on a database of its own per test (Go's tables).
t.setTimeout(180_000)

const PG_URL = process.env.KITE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'

/** Every schema this run creates; all dropped at the end, so parallel runs never collide. */
const schemas: string[] = []
function newSchema(): string {
  const schema = `kite_test_${randomBytes(6).toString('hex')}`
  schemas.push(schema)
  return schema
}

async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 })
  c.on('error', () => {})
  try {
    await c.connect()
    return true
  } catch {
    return false
  } finally {
    await c.end().catch(() => {})
  }
}
const pgSkip = (await pgReachable()) ? false : `PostgreSQL unreachable at ${PG_URL} (set KITE_TEST_POSTGRES)`
// CI always has PostgreSQL: there a missing database is a failure, not a skip.
if (pgSkip !== false && process.env.CI === 'true') throw new Error(pgSkip)

/** Runs `sql` (our own text, no input) on a short-lived connection. */
async function pgRun<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client(PG_URL)
  await c.connect()
  try {
    return (await c.query<R>(sql, values)).rows
  } finally {
    await c.end()
  }
}

t.teardown(async () => {
  if (pgSkip !== false || schemas.length === 0) return
  await pgRun(schemas.map((s) => `DROP SCHEMA IF EXISTS "${s}" CASCADE;`).join('\n'))
})

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `cond` every 10 ms until it holds; fails after `timeoutMs`. */
async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await delay(10)
  }
}

/** Sockets and timers alive in this process, to check that close() releases them. */
function handles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'Timeout').length
}

function kiteNamed(id: string, over: Partial<KiteIdentity> = {}): KiteIdentity {
  return { username: 'alice', environment: 'prod', name: 'math', version: '1.0.0', region: 'eu', hostname: 'h1', id, ...over }
}

const kite = kiteNamed

/**
 * 64 kites whose fields take one of two values each, one the other's prefix
 * (or differing in case), by the bits of the index; ids k0…k63 (k1 is a
 * prefix of k10…k19).
 */
const POOLS: Record<Exclude<keyof KiteIdentity, 'id'>, [string, string]> = {
  username: ['alice', 'Alice'],
  environment: ['prod', 'production'],
  name: ['math', 'mathematics'],
  version: ['1.0.0', '1.0.01'],
  region: ['eu', 'europe'],
  hostname: ['h1', 'h10'],
}
const FIXTURE_NAMES: KiteIdentity[] = Array.from({ length: 64 }, (_, i) => {
  const k = kiteNamed(`k${i}`)
  Object.entries(POOLS).forEach(([field, pool], bit) => {
    k[field as keyof typeof POOLS] = pool[(i >> bit) & 1]!
  })
  return k
})

type Factory = (t: Test) => Promise<KontrolStorage>

/** The behaviour every KontrolStorage must have. */
interface ContractOptions {
  syncEvents: boolean
  skip: string | false
  /** Maps the names used below to the ids the backend takes (UUIDs on Go Kontrol's tables). */
  id?: (name: string) => string
  /** Go Kontrol's tables: a row refreshed within Go's KeyTTL (90 s) stays fresh whatever freshSince says. */
  goKeyTTL?: boolean
  /** Moves the storage's clock on by a few ms: the injected clock of memory and SQLite; PostgreSQL's is the server's, so there time passes. */
  tick: () => Promise<void>
}

function contract(name: string, open: Factory, o: ContractOptions): void {
  const id = o.id ?? ((n: string): string => n)
  const FIXTURE = FIXTURE_NAMES.map((k) => ({ ...k, id: id(k.id) }))
  const kite = (n: string, over: Partial<KiteIdentity> = {}): KiteIdentity => kiteNamed(id(n), over)
  const key1 = id('key1')
  const key2 = id('key2')
  t.test(`${name}: upsert, get, and exact queries on any subset of fields`, { skip: o.skip }, async (t) => {
    const s = await open(t)
    for (const k of FIXTURE) await s.upsert(k, { url: `ws://${k.id}/kite`, keyId: key1 })
    t.equal(await s.count(), FIXTURE.length)
    const got = await s.get(id('k5'))
    t.same(got?.kite, FIXTURE[5])
    t.equal(got?.url, `ws://${id('k5')}/kite`)
    t.equal(got?.keyId, key1)
    t.ok(Math.abs(got!.updatedAt - Date.now()) < 60_000, 'updatedAt is ms since the epoch')
    t.equal(await s.get(id('k')), null, 'no prefix match on id')

    let failures = 0
    for (let mask = 1; mask < 1 << KITE_FIELDS.length; mask++) {
      const fields = KITE_FIELDS.filter((_, i) => (mask >> i) & 1)
      for (const target of [FIXTURE[0]!, FIXTURE[45]!]) {
        const q: ExactQuery = Object.fromEntries(fields.map((f) => [f, target[f]]))
        const want = FIXTURE.filter((k) => fields.every((f) => k[f] === target[f])).map((k) => k.id).sort()
        const have = (await s.query(q, 0)).map((r) => r.kite.id).sort()
        if (JSON.stringify(have) !== JSON.stringify(want)) {
          failures++
          t.same(have, want, `query ${JSON.stringify(q)}`)
        }
      }
    }
    t.equal(failures, 0, 'all 127 field subsets match exactly')
    t.same((await s.query({ region: 'eu' }, 0)).length, 32, "region 'eu' does not match 'europe'")
    t.same((await s.query({ hostname: 'h' }, 0)), [], 'no prefix match on hostname')
    t.same((await s.query({ id: id('k1') }, 0)).map((r) => r.kite.id), [id('k1')], "id 'k1' does not match 'k10'")
    t.same((await s.query({ username: 'ALICE' }, 0)), [], 'case-sensitive')
    t.same((await s.query({ username: 'alice', name: '' }, 0)).length, 32, 'empty fields are ignored')
  })

  t.test(`${name}: upsert of the same id replaces it`, { skip: o.skip }, async (t) => {
    const s = await open(t)
    await s.upsert(kite('a'), { url: 'ws://one/kite', keyId: key1 })
    await s.upsert(kite('a', { version: '2.0.0', hostname: 'h2' }), { url: 'ws://two/kite', keyId: key2 })
    t.equal(await s.count(), 1)
    const r = await s.get(id('a'))
    t.same([r?.url, r?.keyId, r?.kite.version, r?.kite.hostname], ['ws://two/kite', key2, '2.0.0', 'h2'])
    t.same(await s.query({ version: '1.0.0' }, 0), [], 'the old values are not found any more')
    t.equal((await s.query({ hostname: 'h2' }, 0)).length, 1)
  })

  t.test(`${name}: touch refreshes and returns the missing ids`, { skip: o.skip }, async (t) => {
    const s = await open(t)
    await s.upsert(kite('a'), { url: 'ws://a/kite', keyId: key1 })
    await s.upsert(kite('b'), { url: 'ws://b/kite', keyId: key1 })
    const before = (await s.get(id('a')))!.updatedAt
    await o.tick() // the clock must move for updatedAt to
    t.same(await s.touch([id('a'), id('ghost'), id('b')]), [id('ghost')])
    t.ok((await s.get(id('a')))!.updatedAt > before, 'updatedAt moved forward')
    t.same(await s.touch([]), [])
    t.same(await s.touch([id('x'), id('y')]), [id('x'), id('y')])
  })

  t.test(`${name}: freshness and removeStale`, { skip: o.skip }, async (t) => {
    const s = await open(t)
    await s.upsert(kite('a'), { url: 'ws://a/kite', keyId: key1 })
    const a = (await s.get(id('a')))!
    t.equal((await s.query({ id: id('a') }, a.updatedAt)).length, 1, 'refreshed at freshSince counts as fresh')
    if (o.goKeyTTL === true) t.equal((await s.query({ id: id('a') }, a.updatedAt + 1)).length, 1, "on Go's tables a row within KeyTTL stays fresh")
    else t.same(await s.query({ id: id('a') }, a.updatedAt + 1), [], 'older than freshSince is excluded')
    await o.tick()
    await s.upsert(kite('b'), { url: 'ws://b/kite', keyId: key1 })
    const b = (await s.get(id('b')))!
    t.ok(b.updatedAt > a.updatedAt)
    t.same(await s.removeStale(0), [], 'nothing older than the epoch')
    const gone = await s.removeStale(b.updatedAt)
    t.same(gone.map((r) => [r.kite, r.url]), [[kite('a'), 'ws://a/kite']], 'returns the stale kites')
    t.equal(await s.get(id('a')), null)
    t.ok(await s.get(id('b')))
    t.equal(await s.count(), 1)
  })

  t.test(`${name}: remove and count`, { skip: o.skip }, async (t) => {
    const s = await open(t)
    t.equal(await s.count(), 0)
    await s.upsert(kite('a'), { url: 'ws://a/kite', keyId: key1 })
    await s.upsert(kite('b'), { url: 'ws://b/kite', keyId: key1 })
    const r = await s.remove(id('a'))
    t.same([r?.kite, r?.url, r?.keyId], [kite('a'), 'ws://a/kite', key1])
    t.equal(await s.remove(id('a')), null, 'a second remove finds nothing')
    t.equal(await s.get(id('a')), null)
    t.equal(await s.count(), 1)
  })

  t.test(`${name}: a query with no fields rejects`, { skip: o.skip }, async (t) => {
    const s = await open(t)
    await t.rejects(s.query({}, 0), { code: 'KITE_ERR_KONTROL_INVALID', message: /at least one/ })
    await t.rejects(s.query({ name: '', region: '' }, 0), { code: 'KITE_ERR_KONTROL_INVALID', message: /at least one/ })
  })

  t.test(`${name}: key pairs`, { skip: o.skip }, async (t) => {
    const s = await open(t)
    const pem = (n: string): string => `-----BEGIN PUBLIC KEY-----\nMIIB${n}\n-----END PUBLIC KEY-----\n`
    // Ids in the opposite order of creation, so "oldest first" is not "by id".
    const first = { id: id('z-key'), public: pem('first'), private: 'private-1' }
    const second = { id: id('a-key'), public: pem('second'), private: 'private-2' }
    await s.addKeyPair(first)
    await o.tick()
    await s.addKeyPair(second)
    t.same(await s.getKeyPair(id('z-key')), { ...first, deletedAt: null }, 'stored exactly as given')
    t.same(await s.getKeyPairByPublic(`  ${first.public.trim()}\r\n\n`), { ...first, deletedAt: null }, 'public keys compare trimmed')
    t.equal(await s.getKeyPair(id('nope')), null)
    t.equal(await s.getKeyPairByPublic(pem('nope')), null)
    const mine = (pairs: { id: string }[]): typeof pairs => pairs.filter((k) => k.id === first.id || k.id === second.id)
    t.same(mine(await s.listKeyPairs()).map((k) => k.id), [id('z-key'), id('a-key')], 'oldest first')
    await t.rejects(s.addKeyPair({ ...first, public: pem('third') }), 'a duplicate id rejects')
    await t.rejects(s.addKeyPair({ id: id('other'), public: `\n${first.public}`, private: 'p' }), 'a duplicate public key rejects')

    await s.retireKeyPair(id('z-key'))
    const retired = (await s.getKeyPair(id('z-key')))!
    t.equal(typeof retired.deletedAt, 'number')
    t.ok(Math.abs(retired.deletedAt! - Date.now()) < 60_000, 'deletedAt is ms since the epoch')
    t.same({ ...retired, deletedAt: null }, { ...first, deletedAt: null }, 'a retired pair stays readable')
    t.equal((await s.getKeyPairByPublic(first.public))?.deletedAt, retired.deletedAt)
    await o.tick()
    await s.retireKeyPair(id('z-key'))
    t.equal((await s.getKeyPair(id('z-key')))!.deletedAt, retired.deletedAt, 'retiring twice keeps the first time')
    await s.retireKeyPair(id('nope'))
    t.same(mine(await s.listKeyPairs()).map((k) => [k.id, (k as KeyPairRecord).deletedAt === null]), [[id('z-key'), false], [id('a-key'), true]])
  })

  t.test(`${name}: events`, { skip: o.skip }, async (t) => {
    const s = await open(t)
    const events: KiteEvent[] = []
    const off = s.onEvent((e) => events.push(e))
    s.onEvent(() => {
      throw new Error('a broken watcher')
    })
    const seen = (n: number): Promise<void> => until(`${n} events`, () => events.length >= n)

    await s.upsert(kite('a'), { url: 'ws://a/kite', keyId: key1 })
    if (o.syncEvents) t.equal(events.length, 1, 'delivered before upsert resolves')
    await seen(1)
    t.same(events[0], { action: 'REGISTER', kite: kite('a'), url: 'ws://a/kite' })
    await s.remove(id('a'))
    await s.remove(id('a')) // nothing to remove, no event
    await seen(2)
    t.same(events[1], { action: 'DEREGISTER', kite: kite('a'), url: 'ws://a/kite' })
    await s.upsert(kite('b'), { url: 'ws://b/kite', keyId: key1 })
    await s.touch([id('b')]) // not an event
    await s.removeStale(Date.now() + 60_000)
    await seen(4)
    t.same(events.slice(2).map((e) => [e.action, e.kite.id]), [['REGISTER', id('b')], ['DEREGISTER', id('b')]])

    off()
    const later: KiteEvent[] = []
    s.onEvent((e) => later.push(e))
    await s.upsert(kite('c'), { url: 'ws://c/kite', keyId: key1 })
    await until('the new listener', () => later.length === 1)
    t.equal(events.length, 4, 'an unsubscribed listener hears nothing more')
  })

  t.test(`${name}: close releases everything`, { skip: o.skip }, async (t) => {
    const before = handles()
    const s = await open(t)
    const events: KiteEvent[] = []
    s.onEvent((e) => events.push(e))
    await s.upsert(kite('a'), { url: 'ws://a/kite', keyId: key1 })
    await until('the event', () => events.length === 1)
    await s.close()
    await until('sockets and timers to close', () => handles() <= before)
    await t.rejects(s.get(id('a')), 'a closed storage rejects')
    await s.close() // twice is fine
  })
}

/** The clock memory and SQLite storages are given: it moves only when a test ticks it. */
let storageNow = Date.now()
const storageClock = (): number => storageNow
const tickStorageClock = async (): Promise<void> => void (storageNow += 5)
/** PostgreSQL stamps rows with the server's clock: a few ms of real time must pass. */
const tickServerClock = (): Promise<void> => delay(5)

contract('memory', async (t) => {
  const s = new MemoryStorage(storageClock)
  t.teardown(() => s.close())
  return s
}, { syncEvents: true, skip: false, tick: tickStorageClock })

contract('sqlite', async (t) => {
  const s = new SqliteStorage(join(t.testdir(), 'kontrol.db'), storageClock)
  t.teardown(() => s.close())
  return s
}, { syncEvents: true, skip: false, tick: tickStorageClock })

async function openPostgres(t: Test, options: Partial<PostgresStorageOptions> = {}): Promise<PostgresStorage> {
  const s = await PostgresStorage.create({ connectionString: PG_URL, schema: newSchema(), poolSize: 4, ...options })
  t.teardown(() => s.close())
  return s
}

contract('postgres', (t) => openPostgres(t), { syncEvents: false, skip: pgSkip, tick: tickServerClock })

/** A UUID standing for `name`, always the same (Go's tables take UUIDs only). */
function uuidOf(name: string): string {
  const h = createHash('md5').update(name).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`
}

// The same contract on a database made by Go Kontrol's schema files (one per test; the schema name
// `kite` is Go's, fixed), its key_id foreign key satisfied by the pairs key1 and key2 stored as Go does.
contract('postgres on Go Kontrol\'s tables', async (t) => {
  const db = await goKontrolDatabase(t, { timezone: 'Asia/Tokyo' })
  await goSQL(db.url, 'INSERT INTO kite.key (id, public, private) VALUES ($1, $2, $3), ($4, $5, $6)',
    [uuidOf('key1'), 'public-1', 'private-key1', uuidOf('key2'), 'public-2', 'private-key2'])
  const s = await PostgresStorage.create({ connectionString: db.url, poolSize: 4 })
  t.teardown(() => s.close())
  if (s.layout !== 'go') throw new Error('not on the go layout')
  return s
}, { syncEvents: false, skip: pgSkip, id: uuidOf, goKeyTTL: true, tick: tickServerClock })

t.test('sqlite: the data survives a reopen', async (t) => {
  const path = join(t.testdir(), 'kontrol.db')
  const s1 = new SqliteStorage(path)
  await s1.upsert(kite('a'), { url: 'ws://a/kite', keyId: 'key1' })
  await s1.addKeyPair({ id: 'k', public: 'pub', private: 'priv' })
  await s1.close()
  const s2 = new SqliteStorage(path)
  t.teardown(() => s2.close())
  t.equal((await s2.get('a'))?.url, 'ws://a/kite')
  t.equal((await s2.getKeyPair('k'))?.private, 'priv')
})

t.test('postgres: two instances on one schema share kites and events', { skip: pgSkip }, async (t) => {
  const schema = newSchema()
  const a = await openPostgres(t, { schema })
  const b = await openPostgres(t, { schema })
  const atB: KiteEvent[] = []
  const atA: KiteEvent[] = []
  b.onEvent((e) => atB.push(e))
  a.onEvent((e) => atA.push(e))
  await a.upsert(kite('x'), { url: 'ws://x/kite', keyId: 'key1' })
  t.equal((await b.get('x'))?.url, 'ws://x/kite', 'visible through the other instance')
  await until('the event at b', () => atB.length === 1, 10_000)
  await until('the event at a', () => atA.length === 1, 10_000)
  t.same(atB[0], { action: 'REGISTER', kite: kite('x'), url: 'ws://x/kite' })
  await b.remove('x')
  await until('the deregistration at a', () => atA.length === 2, 10_000)
  t.equal(atA[1]!.action, 'DEREGISTER')
  // A marker event: notifications arrive in commit order, so once it is heard no duplicate of the earlier ones can follow.
  await a.upsert(kite('marker'), { url: 'ws://m/kite', keyId: 'key1' })
  await until('the marker at both', () => atA.some((e) => e.kite.id === 'marker') && atB.some((e) => e.kite.id === 'marker'), 10_000)
  t.same([atA.length, atB.length], [3, 3], 'each event arrives once per instance')
})

t.test('postgres: migrations run concurrently without error', { skip: pgSkip }, async (t) => {
  const schema = newSchema()
  const [a, b] = await Promise.all([openPostgres(t, { schema }), openPostgres(t, { schema })])
  await a.upsert(kite('x'), { url: 'ws://x/kite', keyId: 'key1' })
  t.equal(await b.count(), 1)
  const rows = await pgRun<{ version: number }>(`SELECT version FROM "${schema}".migrations ORDER BY version`)
  t.same(rows.map((r) => r.version), [1], 'each migration applied once')
  await a.migrate() // and again, later: nothing to do
})

t.test('postgres: the LISTEN connection and the pool survive their connections being killed', { skip: pgSkip }, async (t) => {
  const schema = newSchema()
  const errors: string[] = []
  const s = await openPostgres(t, { schema, onError: (_err, source) => errors.push(source) })
  const events: KiteEvent[] = []
  s.onEvent((e) => events.push(e))
  await s.count() // a pool connection exists
  await pgRun(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE pid <> pg_backend_pid() AND datname = current_database() AND (application_name = $1 OR query LIKE $2)`,
  [`kontrol-listen-${schema}`, `%"${schema}"%`])
  // Events sent while LISTEN is down are lost: register until one arrives.
  let n = 0
  await until('an event after reconnecting', async () => {
    await s.upsert(kite(`r${n++}`), { url: 'ws://r/kite', keyId: 'key1' }).catch(() => {})
    return events.length > 0
  }, 10_000)
  t.ok(errors.includes('listener'), 'the lost LISTEN connection was reported to onError')
  t.ok((await s.count()) > 0, 'the pool works again')
})

t.test('postgres: an unreachable server rejects create() and leaves nothing behind', { skip: pgSkip }, async (t) => {
  const before = handles()
  await t.rejects(PostgresStorage.create({ connectionString: 'postgres://postgres@127.0.0.1:1/test', schema: newSchema() }))
  await until('sockets and timers to close', () => handles() <= before)
})

t.test('postgres: schema names are validated before any SQL', async (t) => {
  for (const schema of ['Kite', 'kite-x', 'kite;drop', '"kite"', '1kite', '', 'k'.repeat(51)]) {
    t.throws(() => new PostgresStorage({ connectionString: PG_URL, schema }), { code: 'KITE_ERR_KONTROL_STORAGE_CONFIG', message: /invalid PostgreSQL schema/ }, JSON.stringify(schema))
  }
})

t.test('openStorage', async (t) => {
  const dir = t.testdir()
  const memory = await openStorage('memory')
  t.ok(memory instanceof MemoryStorage)
  t.equal(await openStorage(memory), memory, 'a storage object is used as it is')
  for (const spec of [`sqlite:${join(dir, 'a.sqlite3')}`, join(dir, 'b.db'), join(dir, 'c.sqlite'), 'sqlite::memory:']) {
    const s = await openStorage(spec)
    t.ok(s instanceof SqliteStorage, spec)
    await s.close()
  }
  const err = await openStorage('mysql://user:secret@host/db').then(() => null, (e: Error) => e)
  t.match(err, { code: 'KITE_ERR_KONTROL_STORAGE_CONFIG', message: /unknown Kontrol storage/ })
  t.notMatch(err?.message, /secret/, 'the password is not echoed')
  if (pgSkip !== false) return
  const schema = newSchema()
  const s = await openStorage(`${PG_URL}?schema=${schema}`)
  t.teardown(() => s.close())
  t.ok(s instanceof PostgresStorage)
  await s.upsert(kite('a'), { url: 'ws://a/kite', keyId: 'key1' })
  t.same(await pgRun(`SELECT id FROM "${schema}".kite`), [{ id: 'a' }], 'the schema parameter picks the schema')
})

t.test('memory: a duplicate key pair and a closed storage reject with their codes', async (t) => {
  const s = new MemoryStorage()
  await s.addKeyPair({ id: 'k1', public: 'pub-1', private: 'p' })
  await t.rejects(s.addKeyPair({ id: 'k1', public: 'pub-2', private: 'p' }), { code: 'KITE_ERR_KONTROL_STORAGE_CONFLICT', message: 'kontrol storage: key pair k1 already exists' })
  await t.rejects(s.addKeyPair({ id: 'k2', public: ' pub-1\n', private: 'p' }), { code: 'KITE_ERR_KONTROL_STORAGE_CONFLICT', message: /public key already exists/ })
  await s.close()
  await t.rejects(s.get('x'), { code: 'KITE_ERR_KONTROL_STORAGE_CLOSED' })
})
