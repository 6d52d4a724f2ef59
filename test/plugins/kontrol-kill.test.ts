import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { KiteClient } from '../../lib/client/client.js'
import type { GetKitesResult } from '../../lib/protocol/kontrol.js'
import { eventually, startRegisteredKite } from '../helpers/kontrol.js'

t.setTimeout(180_000)

const fixture = fileURLToPath(new URL('../fixtures/kontrol-process.mjs', import.meta.url))

interface KontrolProcess {
  child: ChildProcess
  url: string
  alice: string
  bob: string
}

/** A Kontrol in a child process (SQLite at `db`, default timings); SIGKILLed on teardown. */
async function startKontrolProcess(t: Tap.Test, db: string, port = 0): Promise<KontrolProcess> {
  const child = spawn(process.execPath, [fixture], { env: { ...process.env, KONTROL_DB: db, KONTROL_PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => child.kill('SIGKILL'))
  const lines = createInterface({ input: child.stdout! })
  const [first] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => { throw new Error('kontrol exited at start') })])) as [string]
  return { child, ...(JSON.parse(first) as { url: string; alice: string; bob: string }) }
}

async function kill(k: KontrolProcess): Promise<void> {
  const exited = once(k.child, 'exit')
  k.child.kill('SIGKILL')
  await exited
}

/** Kites Kontrol lists for alice, asked as bob over a fresh connection. */
async function listed(url: string, bob: string): Promise<string[]> {
  const c = new KiteClient(url, { auth: { type: 'kiteKey', key: bob }, kite: { name: 'finder', username: 'bob' }, connectTimeout: 2000, timeout: 5000 })
  try {
    await c.connect()
    const r = (await c.tell('getKites', { query: { username: 'alice', environment: 'test' } })) as GetKitesResult
    return r.kites.map((k) => k.kite.id)
  } catch {
    return []
  } finally {
    await c.close()
  }
}

function checkDatabase(t: Tap.Test, db: string, ids: string[]): void {
  const sqlite = new Database(db, { readonly: true })
  try {
    t.equal(sqlite.pragma('integrity_check', { simple: true }), 'ok', 'SQLite integrity check: ok')
    const rows = sqlite.prepare('SELECT id FROM kites').all() as Array<{ id: string }>
    t.equal(rows.length, ids.length, `${rows.length} rows for ${ids.length} kites: no duplicate, none lost`)
    t.same(rows.map((r) => r.id).sort(), [...ids].sort(), 'one row per kite')
  } finally {
    sqlite.close()
  }
}

t.test('Kontrol killed with SIGKILL and started again on the same port and storage: every kite is listed again, nothing done by hand', async (t) => {
  const db = `${t.testdir()}/kontrol.db`
  const first = await startKontrolProcess(t, db)
  const port = Number(new URL(first.url).port)
  // Default reconnect backoff, as a deployed kite has it.
  const kites = await Promise.all(['a', 'b', 'c'].map((name) => startRegisteredKite(t, first.url, first.alice, { name }, { backoff: {} })))
  const ids = kites.map((k) => k.app.kite.identity.id)
  t.same((await listed(first.url, first.bob)).sort(), [...ids].sort(), 'three kites registered')

  await kill(first)
  const second = await startKontrolProcess(t, db, port)
  const started = Date.now()
  // Rows written before the kill are still in the file: "listed again" means each kite registered anew.
  await eventually(async () => kites.every((k) => k.app.kontrolRegister.registered) && (await listed(second.url, second.bob)).length === ids.length, 60_000)
  t.pass(`every kite registered again and listed ${Date.now() - started} ms after the restart, nothing done by hand`)
  t.same((await listed(second.url, second.bob)).sort(), [...ids].sort())
  await kill(second)
  checkDatabase(t, db, ids)
})

t.test('Kontrol killed with SIGKILL while registrations are in flight: no duplicate or lost rows, integrity ok', async (t) => {
  const db = `${t.testdir()}/kontrol.db`
  const first = await startKontrolProcess(t, db)
  const port = Number(new URL(first.url).port)
  const N = 16
  // Start every kite's registration, and kill Kontrol as soon as the first one is listed.
  const starting = Array.from({ length: N }, (_, i) => startRegisteredKite(t, first.url, first.alice, { name: `k${i}` }, { backoff: { initialMs: 100, maxMs: 2000 } }))
  await eventually(async () => (await listed(first.url, first.bob)).length > 0, 60_000)
  await kill(first)
  const second = await startKontrolProcess(t, db, port)
  const kites = await Promise.all(starting)
  const ids = kites.map((k) => k.app.kite.identity.id)
  const ms = await eventually(async () => kites.every((k) => k.app.kontrolRegister.registered) && (await listed(second.url, second.bob)).length === N, 60_000)
  t.pass(`all ${N} kites listed ${ms} ms after the restart`)
  t.same((await listed(second.url, second.bob)).sort(), [...ids].sort(), 'exactly the kites that registered')
  await kill(second)
  checkDatabase(t, db, ids)
})

