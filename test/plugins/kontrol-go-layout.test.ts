import { randomUUID, verify } from 'node:crypto'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { KiteClient } from '../../lib/client/client.js'
import type { KiteIdentity } from '../../lib/protocol/kite.js'
import type { GetKitesResult } from '../../lib/protocol/kontrol.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { kontrol, type KontrolOptions } from '../../plugins/kontrol/index.js'
import { PostgresStorage } from '../../plugins/kontrol/storage/postgres.js'
import { GoKontrolSQL, goKontrolDatabase, sql } from '../helpers/go-kontrol.js'
import { eventually, startRegisteredKite } from '../helpers/kontrol.js'
import { makeKontrol, type TestKontrol } from '../helpers/tokens.js'

// Each test makes a database of its own (CREATE DATABASE is slow on a busy machine).
t.setTimeout(180_000)

/** Go Kontrol's username (its -username), which ours must share. */
const GO_USER = 'koding'
const quiet = process.env.KITE_TEST_LOG === '1' ? { level: 'debug' } : false

/** Our Kontrol, as `kite kontrol` would run it beside Go's: Go's username, 1 s heartbeats, 1 s grace. */
async function startOurs(t: Tap.Test, storage: string, o: KontrolOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: quiet, return503OnClosing: false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'kontrol', version: '0.0.1', username: GO_USER, closeGraceMs: 200 })
  await app.register(kiteAuth, { kiteKey: false })
  await app.register(kontrol, { storage, heartbeatInterval: 1, heartbeatGrace: 1, sweepInterval: 200, ...o })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

/** Go's key pairs, stored as Go Kontrol stores them (trimmed PEMs, uuid ids). */
async function goKeyPair(go: GoKontrolSQL): Promise<TestKontrol & { id: string }> {
  const pair = makeKontrol(GO_USER)
  const id = randomUUID()
  await go.addKey(id, pair.publicKey.trim(), pair.privateKey.trim())
  return { ...pair, id }
}

const b64json = (part: string): Record<string, unknown> => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>

/**
 * A token checked as a Go kite checks it (spec §5.4): RSA algorithm, issuer
 * equal to its Kontrol's username, signature by its kontrolKey, exp/nbf/iat
 * with no leeway, audience matching the kite. Returns the username (`sub`).
 */
function verifyAsGoKite(token: string, kontrolKey: string, kontrolUser: string, kite: KiteIdentity): string {
  const [h, c, s] = token.split('.')
  const header = b64json(h!)
  const claims = b64json(c!)
  if (header.alg !== 'RS256') throw new Error(`unexpected signing method: ${String(header.alg)}`)
  if (claims.iss !== kontrolUser) throw new Error(`issuer is not trusted: ${String(claims.iss)}`)
  if (!verify('RSA-SHA256', Buffer.from(`${h}.${c}`), kontrolKey, Buffer.from(s!, 'base64url'))) throw new Error('token is expired')
  const now = Date.now() / 1000
  if (typeof claims.exp !== 'number' || claims.exp < now) throw new Error('token is expired')
  if (typeof claims.nbf === 'number' && claims.nbf > now) throw new Error('token is not valid yet')
  if (typeof claims.iat === 'number' && claims.iat > now) throw new Error('token used before issued')
  const aud = claims.aud
  if (typeof aud !== 'string' || aud === '') throw new Error('token has no audience')
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new Error('token has no username')
  if (aud !== '/') {
    const [, username, environment, name] = aud.split('/')
    if (username !== kite.username) throw new Error(`audience: username "${username}" not allowed (${aud})`)
    if (environment !== undefined && environment !== '' && environment !== kite.environment) throw new Error(`audience: environment "${environment}" not allowed (${aud})`)
    if (name !== undefined && name !== '' && name !== kite.name) throw new Error(`audience: kite "${name}" not allowed (${aud})`)
  }
  return claims.sub
}

function goKite(over: Partial<KiteIdentity> = {}): KiteIdentity {
  return { username: 'carol', environment: 'prod', name: 'fs', version: '1.2.0', region: 'eu', hostname: 'go-host', id: randomUUID(), ...over }
}

/** Everything in the database besides the system catalogs: relations, triggers, functions. */
async function objects(url: string): Promise<string[]> {
  const rows = await sql<{ o: string }>(url, `
    SELECT 'rel ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' ' || c.relpersistence::text AS o
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL SELECT 'function ' || n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL SELECT 'schema ' || nspname FROM pg_namespace
    ORDER BY 1`)
  return rows.map((r) => r.o)
}

async function finder(t: Tap.Test, url: string, kiteKey: string): Promise<KiteClient> {
  const c = new KiteClient(url, { auth: { type: 'kiteKey', key: kiteKey }, kite: { name: 'finder', username: 'bob' } })
  t.teardown(() => c.close())
  await c.connect()
  return c
}

const kitesOf = async (c: KiteClient, query: Record<string, string>): Promise<GetKitesResult['kites']> =>
  ((await c.tell('getKites', { query })) as GetKitesResult).kites

t.test("our Kontrol starts on Go's tables as Go's application role, with Go's key files, and creates nothing", async (t) => {
  const db = await goKontrolDatabase(t, { roles: true, timezone: 'Asia/Tokyo' })
  const go = await GoKontrolSQL.connect(t, db.url)
  const older = await goKeyPair(go)
  const current = await goKeyPair(go)
  const dir = t.testdir()
  await writeFile(join(dir, 'kontrol.pub'), current.publicKey)
  await writeFile(join(dir, 'kontrol.key'), current.privateKey)
  const before = await objects(db.url)
  t.ok(before.includes('rel kite.kite r u'), 'the fixture made the kite table UNLOGGED')

  // As Go reads them: KONTROL_PUBLICKEYFILE / KONTROL_PRIVATEKEYFILE.
  process.env.KONTROL_PUBLICKEYFILE = join(dir, 'kontrol.pub')
  process.env.KONTROL_PRIVATEKEYFILE = join(dir, 'kontrol.key')
  let app: FastifyInstance
  try {
    app = await startOurs(t, db.appURL!)
  } finally {
    delete process.env.KONTROL_PUBLICKEYFILE
    delete process.env.KONTROL_PRIVATEKEYFILE
  }
  t.equal((app.kontrol.storage as PostgresStorage).layout, 'go')
  t.equal(app.kontrol.keys.current.id, current.id, "the key pair of the key files is Go's stored pair, found by its public key")
  t.same(app.kontrol.keys.all().map((k) => k.id).sort(), [older.id, current.id].sort(), 'every pair Go stored is known')
  t.same((await sql(db.url, 'SELECT id::text FROM kite.key ORDER BY created_at')).map((r) => r.id), [older.id, current.id], 'no key pair added')
  t.same(await objects(db.url), before, 'no table, index, trigger, function or schema added')
  // A kite.key ours issues is one Go's kiteKey authenticator accepts: signed by the pair its kontrolKey names.
  const [h, c, sig] = app.kontrol.service.issueKiteKey('alice').split('.')
  t.match(b64json(c!), { iss: GO_USER, sub: 'alice', kontrolKey: current.publicKey.trim() })
  t.ok(verify('RSA-SHA256', Buffer.from(`${h}.${c}`), current.publicKey, Buffer.from(sig!, 'base64url')), "signed with Go's key")
})

t.test('kites registered through ours land in Go\'s tables; Go\'s SQL reads them back', async (t) => {
  const db = await goKontrolDatabase(t, { roles: true, timezone: 'Asia/Tokyo' })
  const go = await GoKontrolSQL.connect(t, db.url)
  const goKontrol = await goKeyPair(go)
  const app = await startOurs(t, db.appURL!, { keyPair: { publicKey: goKontrol.publicKey, privateKey: goKontrol.privateKey } })

  // A kite holding a kite.key that Go Kontrol issued registers with ours.
  const math = await startRegisteredKite(t, app.kontrol.url, goKontrol.kiteKey('alice'))
  const identity = math.app.kite.identity
  const [row] = await go.get({ username: 'alice', environment: 'test', name: 'math' })
  t.ok(row, "Go's Get finds it")
  t.same(row!.kite, identity, 'every field in its column (name in kitename)')
  t.equal(row!.url, math.url)
  t.equal(row!.keyId, goKontrol.id, "key_id is Go's pair, the one that signed the kite.key")
  const [{ goNow }] = await sql<{ goNow: Date }>(db.url, `SELECT (now() at time zone 'utc')::timestamptz AS "goNow"`) as [{ goNow: Date }]
  t.ok(Math.abs(row!.updatedAt.getTime() - goNow.getTime()) < 10_000, 'updated_at stamped as Go stamps it (UTC wall-clock time), in a non-UTC server time zone')
  t.ok(row!.createdAt.getTime() <= row!.updatedAt.getTime())
  t.same(await go.key('id', row!.keyId), { id: goKontrol.id, public: goKontrol.publicKey.trim(), private: goKontrol.privateKey.trim(), deleted_at: null }, "Go's key lookup by the row's key_id finds the pair")

  t.equal(await go.clean(90), 0, "Go's cleaner (KeyTTL 90 s) deletes nothing of ours")
  t.equal(await go.update(identity.id, math.url), 1, "Go's Update finds the row")
  // Ours keeps refreshing it the way Go's cleaner understands.
  const refreshed = (await go.get({ id: identity.id }))[0]!.updatedAt
  await eventually(async () => (await go.get({ id: identity.id }))[0]!.updatedAt > refreshed, 5000)
  t.pass('ours refreshes updated_at as Go does')

  // A deregistration through ours deletes the row Go reads.
  await math.app.close()
  await eventually(async () => (await go.get({ id: identity.id })).length === 0, 5000)
  t.pass('a kite that leaves is gone from Go\'s table')
})

t.test("rows written as Go writes them: found, with tokens signed by the pair of their key_id, accepted as Go kites accept them", async (t) => {
  const db = await goKontrolDatabase(t, { timezone: 'Asia/Tokyo' })
  const go = await GoKontrolSQL.connect(t, db.url)
  const previous = await goKeyPair(go) // a pair of an earlier Go Kontrol, still valid
  const retired = await goKeyPair(go)
  await go.deleteKey(retired.id)
  const current = await goKeyPair(go)
  // Go Kontrol's own registration when it has no pair of its own: a placeholder pair, which cannot sign.
  const placeholder = randomUUID()
  await go.addKey(placeholder, 'kontrol-self', 'kontrol-self')
  const goSelf = goKite({ username: GO_USER, name: 'kontrol', version: '0.0.1' })
  await go.upsert(goSelf, 'http://127.0.0.1:4000/kite', placeholder)
  const app = await startOurs(t, db.url, { keyPair: { publicKey: current.publicKey, privateKey: current.privateKey }, keyRefreshInterval: 200 })

  // A kite that registered with Go Kontrol under the previous pair: it trusts only that pair's key for issuer koding.
  const fs = Fastify({ logger: quiet })
  t.teardown(() => fs.close())
  await fs.register(kiteServer, { name: 'fs', version: '1.2.0', username: 'carol', environment: 'prod', region: 'eu', hostname: 'go-host', closeGraceMs: 200 })
  await fs.register(kiteAuth, { kiteKey: false, trustedKontrolKeys: [{ publicKey: previous.publicKey, issuer: GO_USER }] })
  fs.kite.handle('secret', (req) => `hello ${req.username}`)
  const fsURL = `${await fs.listen({ port: 0, host: '127.0.0.1' })}/kite`
  const fsKite = fs.kite.identity
  await go.upsert(fsKite, fsURL, previous.id)
  const onRetired = goKite({ name: 'old' })
  await go.upsert(onRetired, 'http://127.0.0.1:1/kite', retired.id)

  const bob = await finder(t, app.kontrol.url, current.kiteKey('bob'))
  const [found] = await kitesOf(bob, { username: 'carol', name: 'fs' })
  t.ok(found, 'the Go-written row is found')
  t.same(found!.kite, fsKite)
  t.equal(found!.url, fsURL)
  t.equal(found!.keyId, previous.id)
  t.equal(verifyAsGoKite(found!.token, previous.publicKey, GO_USER, fsKite), 'bob', 'the token verifies as a Go kite verifies it: RS256, issuer, audience, signed by the pair of its key_id')
  t.throws(() => verifyAsGoKite(found!.token, current.publicKey, GO_USER, fsKite), /token is expired/, 'not by the current pair (as getOrUpdateKeyID)')
  t.throws(() => verifyAsGoKite(found!.token, previous.publicKey, 'someone-else', fsKite), /issuer is not trusted/)
  const client = new KiteClient(found!.url, { auth: { type: 'token', key: found!.token } })
  t.teardown(() => client.close())
  await client.connect()
  t.equal(await client.tell('secret'), 'hello bob', 'the kite accepts the token')
  const token = (await bob.tell('getToken', { id: fsKite.id })) as string
  t.equal(verifyAsGoKite(token, previous.publicKey, GO_USER, fsKite), 'bob', 'getToken too')

  const [old] = await kitesOf(bob, { username: 'carol', name: 'old' })
  t.equal(verifyAsGoKite(old!.token, current.publicKey, GO_USER, onRetired), 'bob', 'a row whose pair Go retired gets a token of the current pair (as getOrUpdateKeyID)')
  const [self] = await kitesOf(bob, { username: GO_USER, name: 'kontrol' })
  t.equal(verifyAsGoKite(self!.token, current.publicKey, GO_USER, goSelf), 'bob', "Go Kontrol's own row, on its placeholder pair, gets a token of the current pair")

  // Go Kontrol restarts with new key files: kites holding its new kite.keys register with ours too.
  const next = await goKeyPair(go)
  const erin = new KiteClient(app.kontrol.url, { auth: { type: 'kiteKey', key: next.kiteKey('erin') }, kite: { name: 'erin', username: 'erin', environment: 'prod' } })
  t.teardown(() => erin.close())
  await erin.connect()
  await eventually(async () => erin.tell('register', { url: 'http://127.0.0.1:6/kite' }).then(() => true, () => false), 5000)
  const [erinRow] = await go.get({ username: 'erin' })
  t.equal(erinRow?.keyId, next.id, "a pair Go stored after ours started is trusted, and its kites' rows carry its id")
})

t.test('liveness across both Kontrols', async (t) => {
  const db = await goKontrolDatabase(t, { timezone: 'Asia/Tokyo' })
  const go = await GoKontrolSQL.connect(t, db.url)
  const goKontrol = await goKeyPair(go)
  const app = await startOurs(t, db.url, { keyPair: { publicKey: goKontrol.publicKey, privateKey: goKontrol.privateKey } })
  const bob = await finder(t, app.kontrol.url, goKontrol.kiteKey('bob'))

  // Go's kites: Go refreshes a live kite's row every 60–70 s; its cleaner removes rows older than 90 s.
  const live = goKite({ name: 'live' })
  const dead = goKite({ name: 'dead' })
  await go.upsert(live, 'http://127.0.0.1:2/kite', goKontrol.id)
  await go.upsert(dead, 'http://127.0.0.1:3/kite', goKontrol.id)
  await go.age(live.id, 65)
  await go.age(dead.id, 95)
  t.equal((await kitesOf(bob, { username: 'carol', name: 'live' })).length, 1, "a Go kite refreshed 65 s ago is listed (older than our 2 s bound, within Go's 90 s)")
  t.equal((await kitesOf(bob, { username: 'carol', name: 'dead' })).length, 0, 'a Go kite silent for 95 s is not')
  await eventually(async () => (await go.get({ id: dead.id })).length === 0, 5000)
  t.pass("the dead one is removed (as Go's cleaner would)")
  t.equal((await go.get({ id: live.id })).length, 1, 'in the same sweep, the live one is not')
  t.equal((await kitesOf(bob, { username: 'carol', name: 'live' })).length, 1)

  // Our kite that goes silent (never answers kite.heartbeat) without disconnecting.
  const silent = new KiteClient(app.kontrol.url, { auth: { type: 'kiteKey', key: goKontrol.kiteKey('dave') }, kite: { name: 'silent', username: 'dave', environment: 'prod' } })
  t.teardown(() => silent.close())
  silent.handle('kite.heartbeat', () => null) // accepts the heartbeat request, never pings
  await silent.connect()
  await silent.tell('register', { url: 'http://127.0.0.1:4/kite' })
  const [mine] = await go.get({ username: 'dave', name: 'silent' })
  t.ok(mine, 'registered into Go\'s table')
  const gone = await eventually(async () => (await go.get({ id: mine!.kite.id })).length === 0, 10_000)
  t.ok(gone < 10_000, `gone from Go's table (so from Go Kontrol's answers too) within our bound: ${gone} ms`)
  t.equal((await kitesOf(bob, { username: 'dave', name: 'silent' })).length, 0, 'and from ours')
  t.equal((await kitesOf(bob, { username: 'carol', name: 'live' })).length, 1, "Go's live kite is still there")
})

t.test('storage on Go\'s tables: rows ours wrote, rows others refreshed, Go\'s time stamps in any server time zone', async (t) => {
  for (const timezone of ['America/New_York', 'Asia/Tokyo']) {
    await t.test(timezone, async (t) => {
      const db = await goKontrolDatabase(t, { timezone })
      const go = await GoKontrolSQL.connect(t, db.url)
      const open = async (): Promise<PostgresStorage> => {
        const s = await PostgresStorage.create({ connectionString: db.url, poolSize: 2 })
        t.teardown(() => s.close())
        return s
      }
      const a = await open()
      const b = await open()
      t.equal(a.layout, 'go')
      const keyId = randomUUID()
      await a.addKeyPair({ id: keyId, public: `pub-${keyId}`, private: `priv-${keyId}` })
      await t.rejects(a.addKeyPair({ id: 'not-a-uuid', public: 'p2', private: 'q2' }), /key id must be a UUID/)

      const x = goKite({ name: 'x' })
      const moved = goKite({ name: 'moved' })
      const refreshedByGo = goKite({ name: 'refreshed' })
      const goOld = goKite({ name: 'old' })
      const goRecent = goKite({ name: 'recent' })
      for (const k of [x, moved, refreshedByGo]) await a.upsert(k, { url: 'http://x/kite', keyId })
      await go.upsert(goOld, 'http://old/kite', keyId)
      await go.upsert(goRecent, 'http://recent/kite', keyId)
      const ax = (await b.get(x.id))!
      t.ok(Math.abs(ax.updatedAt - Date.now()) < 10_000, `updatedAt of our row is ms since the epoch (${ax.updatedAt - Date.now()} ms off)`)
      t.ok(Math.abs((await a.get(goOld.id))!.updatedAt - Date.now()) < 10_000, "and of a row Go wrote")
      t.same((await b.query({ username: 'carol', name: 'old' }, Date.now() - 5000)).map((r) => r.kite), [goOld])

      await go.age(goOld.id, 91)
      await go.age(goRecent.id, 60)
      t.same(await a.query({ username: 'carol', name: 'old' }, Date.now() - 2000), [], 'past KeyTTL: not fresh')
      t.equal((await a.query({ username: 'carol', name: 'recent' }, Date.now() - 2000)).length, 1, 'within KeyTTL: fresh, whatever freshSince says')

      await b.upsert(moved, { url: 'http://elsewhere/kite', keyId }) // the kite moved to another Kontrol
      await go.update(refreshedByGo.id, 'http://x/kite') // Go Kontrol refreshed it
      const removed = await a.removeStale(Date.now() + 60_000)
      t.same(removed.map((r) => r.kite.name).sort(), ['old', 'x'], "removes its own stale row and rows past Go's KeyTTL, nothing another Kontrol refreshed")
      t.same((await go.get({ username: 'carol' })).map((r) => r.kite.name).sort(), ['moved', 'recent', 'refreshed'])
      t.same(await b.removeStale(Date.now() - 60_000), [], 'nothing is stale for b yet')

      const left = goKite({ name: 'left' })
      await a.upsert(left, { url: 'http://left/kite', keyId })
      await b.upsert(left, { url: 'http://left-again/kite', keyId }) // registered again elsewhere before a saw it leave
      t.equal(await a.remove(left.id), null, 'a does not remove a row another Kontrol refreshed since a wrote it')
      const goTook = goKite({ name: 'took' })
      await a.upsert(goTook, { url: 'http://took/kite', keyId })
      await go.upsert(goTook, 'http://took-again/kite', keyId)
      t.equal(await a.remove(goTook.id), null, 'nor one Go Kontrol wrote since')
      t.equal((await b.remove(left.id))?.url, 'http://left-again/kite', 'the Kontrol that wrote it last removes it')
      t.same(await a.touch([moved.id, 'nope', x.id]), ['nope', x.id], 'touch reports ids that are not UUIDs or not there')
      t.equal(await a.get('nope'), null, 'a non-UUID id is simply not there')
      t.same(await a.query({ id: 'k1' }, 0), [])
      t.equal(await a.remove('nope'), null)
      await t.rejects(a.upsert(goKite({ id: 'k1' }), { url: 'http://x/kite', keyId }), /kite id must be a UUID/)
      await t.rejects(a.upsert(goKite(), { url: 'http://x/kite', keyId: randomUUID() }), /foreign key/, 'key_id must name a stored pair (Go\'s foreign key)')

      await a.retireKeyPair(keyId) // Go's CHECK (created_at <= deleted_at) holds in any time zone
      const retired = (await b.getKeyPair(keyId))!
      t.ok(Math.abs(retired.deletedAt! - Date.now()) < 10_000, 'deletedAt is ms since the epoch')
      t.not((await go.key('id', keyId))!.deleted_at, null, "Go's lookup sees the pair deleted")
      t.equal(await a.count(), 4, 'moved, recent, refreshed, took')
    })
  }
})

t.test("Go's tables from before its key_id migration are refused with a clear error", async (t) => {
  const db = await goKontrolDatabase(t)
  await sql(db.url, 'ALTER TABLE kite.kite DROP COLUMN key_id')
  await t.rejects(PostgresStorage.create({ connectionString: db.url }), /schema "kite" has Go Kontrol's tables but not as its schema files make them: kite\.key_id \(uuid\) is missing; apply Go Kontrol's 003-migration SQL first/)
  t.same((await sql(db.url, `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'kite' AND c.relname = 'migrations'`))[0], { n: 0 }, 'and nothing is created')
})

t.test('`kite kontrol --postgres` on a database made by Go\'s schema files, with Go\'s key files and username', async (t) => {
  const db = await goKontrolDatabase(t)
  const go = await GoKontrolSQL.connect(t, db.url)
  const goKontrol = await goKeyPair(go)
  const dir = t.testdir()
  await writeFile(join(dir, 'kontrol.pub'), goKontrol.publicKey)
  await writeFile(join(dir, 'kontrol.key'), goKontrol.privateKey)
  const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))
  const child = spawn(process.execPath, [cli, 'kontrol', '--port', '0', '--json', '--username', GO_USER, '--postgres', db.url], {
    env: { ...process.env, KITE_HOME: join(dir, 'home'), KONTROL_PUBLICKEYFILE: join(dir, 'kontrol.pub'), KONTROL_PRIVATEKEYFILE: join(dir, 'kontrol.key') },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => child.kill('SIGKILL'))
  const line = await new Promise<string>((resolve, reject) => {
    let out = ''
    let err = ''
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')))
    })
    child.once('exit', (code) => reject(new Error(`kite kontrol exited ${code}: ${err}`)))
  })
  const started = JSON.parse(line) as { url: string; publicKey: string }
  t.equal(started.publicKey, goKontrol.publicKey.trim(), "it signs with Go's key pair")
  const bob = await finder(t, started.url, goKontrol.kiteKey('bob'))
  const k = goKite()
  await go.upsert(k, 'http://127.0.0.1:5/kite', goKontrol.id)
  const [found] = await kitesOf(bob, { username: 'carol', name: 'fs' })
  t.equal(verifyAsGoKite(found!.token, goKontrol.publicKey, GO_USER, k), 'bob', 'a kite.key of Go Kontrol works with it, and its tokens verify as Go kites verify them')
})
