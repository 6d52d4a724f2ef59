import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import type { KiteIdentity } from '../lib/protocol/kite.js'
import { MemoryStorage, type KontrolStorage } from '../plugins/kontrol/storage/index.js'
import { PostgresStorage } from '../plugins/kontrol/storage/postgres.js'
import { SqliteStorage } from '../plugins/kontrol/storage/sqlite.js'

/**
 * Kontrol storage throughput: 10,000 registrations (10 usernames × 10
 * environments × 100 names), then exact (username, environment, name)
 * queries, per backend.
 *   npx tsc -p . && node dist/bench/getkites.js
 * KITE_BENCH_POSTGRES (or KITE_TEST_POSTGRES) picks the server; BENCH_SECONDS the query time per case.
 */
const PG_URL = process.env.KITE_BENCH_POSTGRES ?? process.env.KITE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)
const IN_FLIGHT = 16
const USERS = 10
const ENVS = 10
const NAMES = 100

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!
const int = (n: number): number => Math.floor(Math.random() * n)

const KITES: KiteIdentity[] = []
for (let u = 0; u < USERS; u++) {
  for (let e = 0; e < ENVS; e++) {
    for (let n = 0; n < NAMES; n++) {
      KITES.push({
        username: `user${u}`, environment: `env${e}`, name: `kite${n}`, version: `1.${int(5)}.${int(10)}`,
        region: pick(['eu', 'europe', 'us-east', 'us-west', 'asia']), hostname: `host${int(50)}`, id: randomUUID(),
      })
    }
  }
}

/** Runs `op` from `inFlight` loops until `count` calls are done or `seconds` pass; returns calls per second. */
async function rate(inFlight: number, op: (i: number) => Promise<unknown>, limit: { count?: number; seconds?: number }): Promise<number> {
  const end = performance.now() + (limit.seconds ?? Infinity) * 1000
  const max = limit.count ?? Infinity
  let next = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < max && performance.now() < end) await op(next++)
  }))
  return next / ((performance.now() - start) / 1000)
}

async function bench(name: string, s: KontrolStorage): Promise<void> {
  const upserts = await rate(IN_FLIGHT, (i) => s.upsert(KITES[i]!, { url: `ws://${KITES[i]!.hostname}:4000/kite`, keyId: 'bench-key' }), { count: KITES.length })
  if ((await s.count()) !== KITES.length) throw new Error(`${name}: expected ${KITES.length} kites`)
  let found = 0
  const query = async (): Promise<void> => {
    found += (await s.query({ username: `user${int(USERS)}`, environment: `env${int(ENVS)}`, name: `kite${int(NAMES)}` }, Date.now() - 60_000)).length
  }
  const q1 = await rate(1, query, { seconds: SECONDS })
  const qN = await rate(IN_FLIGHT, query, { seconds: SECONDS })
  if (found === 0) throw new Error(`${name}: queries found nothing`)
  const f = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(10)
  console.log(`${name.padEnd(10)} ${f(upserts)} ${f(q1)} ${f(qN)}`)
}

console.log(`${KITES.length} kites; ${IN_FLIGHT} calls in flight unless noted; queries for ${SECONDS} s each`)
console.log(`${'backend'.padEnd(10)} ${'upserts/s'.padStart(10)} ${'query/s(1)'.padStart(10)} ${`query/s(${IN_FLIGHT})`.padStart(10)}`)

const memory = new MemoryStorage()
await bench('memory', memory)
await memory.close()

const dir = mkdtempSync(join(tmpdir(), 'kontrol-bench-'))
const sqlite = new SqliteStorage(join(dir, 'kontrol.db'))
await bench('sqlite', sqlite)
await sqlite.close()
rmSync(dir, { recursive: true, force: true })

const schema = `kite_bench_${randomBytes(4).toString('hex')}`
let postgres: PostgresStorage | null = null
try {
  postgres = await PostgresStorage.create({ connectionString: PG_URL, schema })
} catch (err) {
  console.log(`postgres   skipped: ${(err as Error).message} (${PG_URL})`)
}
if (postgres !== null) {
  try {
    await bench('postgres', postgres)
  } finally {
    await postgres.close()
    const c = new pg.Client(PG_URL)
    await c.connect()
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`) // our own generated name
    await c.end()
  }
}
