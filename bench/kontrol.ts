import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import pg from 'pg'
import { KiteClient } from '../lib/client/client.js'
import type { KiteIdentity } from '../lib/protocol/kite.js'
import { kiteAuth } from '../plugins/kite-auth/index.js'
import { kiteServer } from '../plugins/kite-server/index.js'
import { kontrol } from '../plugins/kontrol/index.js'

/**
 * Kontrol end to end over the wire (raw WebSocket, loopback, Kontrol and
 * clients in this one process), per backend:
 *  - reg/s: BENCH_REGISTER (default 1000) KiteClients, 32 at a time, each
 *    connect → register; every connection stays open (one connection = one kite).
 *  - getKites/s: 10,000 kites (10 usernames × 10 environments × 100 names)
 *    filled directly through storage.upsert, then exact 3-field queries from one
 *    KiteClient with a kite.key, 32 in flight, BENCH_SECONDS (default 3) after 1 s warm-up.
 *  - storage q/s: the same queries on the same storage object (storage.query), same run.
 *   npx tsc -p . && node dist/bench/kontrol.js
 * KITE_BENCH_POSTGRES (or KITE_TEST_POSTGRES) picks the server.
 */
const PG_URL = process.env.KITE_BENCH_POSTGRES ?? process.env.KITE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const REGISTER = Number(process.env.BENCH_REGISTER ?? 1000)
const IN_FLIGHT = 32
const USERS = 10
const ENVS = 10
const NAMES = 100

const int = (n: number): number => Math.floor(Math.random() * n)
const KITES: KiteIdentity[] = []
for (let u = 0; u < USERS; u++) {
  for (let e = 0; e < ENVS; e++) {
    for (let n = 0; n < NAMES; n++) {
      KITES.push({ username: `user${u}`, environment: `env${e}`, name: `kite${n}`, version: `1.${int(5)}.${int(10)}`, region: 'eu', hostname: `host${int(50)}`, id: randomUUID() })
    }
  }
}
const randomQuery = (): { username: string; environment: string; name: string } => ({ username: `user${int(USERS)}`, environment: `env${int(ENVS)}`, name: `kite${int(NAMES)}` })

interface Rate {
  perSec: number
  p50: number
  p99: number
  found: number
}

/** `inFlight` loops of `call` (returns kites found): 1 s warm-up, then SECONDS measured. */
async function measure(call: () => Promise<number>): Promise<Rate> {
  const warmEnd = performance.now() + 1000
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (performance.now() < warmEnd) await call()
  }))
  const latencies: number[] = []
  let found = 0
  const start = performance.now()
  const end = start + SECONDS * 1000
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now()
      const n = await call() // not `found += await call()`: that reads `found` before awaiting
      latencies.push(performance.now() - t0)
      found += n
    }
  }))
  const elapsed = (performance.now() - start) / 1000
  latencies.sort((a, b) => a - b)
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!
  return { perSec: latencies.length / elapsed, p50: q(0.5), p99: q(0.99), found: found / latencies.length }
}

/** A Kontrol on 127.0.0.1 whose kites stay fresh for 10 min, so upserted rows are returned during the run. */
async function startKontrol(storage: string): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, return503OnClosing: false })
  await app.register(kiteServer, { name: 'kontrol', version: '0.0.1', username: 'kontrol-owner', closeGraceMs: 200 })
  await app.register(kiteAuth, { kiteKey: false })
  await app.register(kontrol, { storage, heartbeatInterval: 300, heartbeatGrace: 300 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

/** REGISTER clients, 32 at a time: connect, register. Returns registrations/s and the (still open) clients. */
async function registerOverWire(app: FastifyInstance): Promise<{ perSec: number; clients: KiteClient[] }> {
  const key = app.kontrol.service.issueKiteKey('registrar')
  const clients: KiteClient[] = []
  let next = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < REGISTER) {
      const i = next++
      const c = new KiteClient(app.kontrol.url, { transport: 'websocket', auth: { type: 'kiteKey', key }, kite: { name: `reg${i}`, username: 'registrar', environment: 'wire', hostname: 'bench' } })
      clients.push(c)
      await c.connect()
      await c.tell('register', { url: `ws://127.0.0.1:${4000 + (i % 1000)}/kite` })
    }
  }))
  const perSec = REGISTER / ((performance.now() - start) / 1000)
  if (app.kontrol.registry.size !== REGISTER) throw new Error(`registered ${app.kontrol.registry.size}, expected ${REGISTER}`)
  return { perSec, clients }
}

interface Row {
  name: string
  reg: number
  kontrol: Rate
  storage: Rate
}

async function bench(name: string, spec: string): Promise<Row> {
  const app = await startKontrol(spec)
  const clients: KiteClient[] = []
  try {
    const reg = await registerOverWire(app)
    clients.push(...reg.clients)
    const storage = app.kontrol.storage
    const keyId = app.kontrol.keys.current.id
    let fill = 0
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (fill < KITES.length) {
        const k = KITES[fill++]!
        await storage.upsert(k, { url: `ws://${k.hostname}:4000/kite`, keyId })
      }
    }))
    if ((await storage.count()) !== KITES.length + REGISTER) throw new Error(`${name}: expected ${KITES.length + REGISTER} kites`)
    const finder = new KiteClient(app.kontrol.url, { transport: 'websocket', auth: { type: 'kiteKey', key: app.kontrol.service.issueKiteKey('finder') }, kite: { name: 'finder', username: 'finder' } })
    clients.push(finder)
    await finder.connect()
    const viaKontrol = await measure(async () => ((await finder.tell('getKites', { query: randomQuery() })) as { kites: unknown[] }).kites.length)
    const direct = await measure(async () => (await storage.query(randomQuery(), app.kontrol.registry.freshSince())).length)
    if (viaKontrol.found === 0 || direct.found === 0) throw new Error(`${name}: queries found nothing`)
    return { name, reg: reg.perSec, kontrol: viaKontrol, storage: direct }
  } finally {
    await Promise.all(clients.map((c) => c.close()))
    await app.close()
  }
}

const rows: Row[] = []
rows.push(await bench('memory', 'memory'))
const dir = mkdtempSync(join(tmpdir(), 'kontrol-bench-'))
try {
  rows.push(await bench('sqlite', `sqlite:${join(dir, 'kontrol.db')}`))
} finally {
  rmSync(dir, { recursive: true, force: true })
}
const schema = `kite_bench_${randomBytes(4).toString('hex')}`
const admin = new pg.Client(PG_URL)
let pgUp = true
await admin.connect().catch((err: Error) => {
  pgUp = false
  console.log(`postgres skipped: ${err.message} (${PG_URL})`)
})
if (pgUp) {
  try {
    const url = new URL(PG_URL)
    url.searchParams.set('schema', schema)
    rows.push(await bench('postgres', url.toString()))
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`) // our own generated name
    await admin.end()
  }
}

console.log(`Kontrol over raw WebSocket, loopback, Kontrol and clients in one process, Node ${process.version}`)
console.log(`reg/s: ${REGISTER} KiteClients (${IN_FLIGHT} at a time) connect + register over the wire, each kept connected`)
console.log(`getKites: ${KITES.length} kites filled via storage.upsert; exact (username, environment, name) query, ${IN_FLIGHT} in flight, ${SECONDS} s after 1 s warm-up`)
console.log('each found kite gets an RS256 token for the requester; tokens are cached per (audience, requester), and 10,000 kites = 10,000 audiences')
console.log(`storage q/s: storage.query with the same queries on the same storage, same run; ratio = Kontrol getKites/s ÷ storage q/s`)
const cols = ['backend'.padEnd(9), 'reg/s'.padStart(7), 'getKites/s'.padStart(10), 'p50 ms'.padStart(7), 'p99 ms'.padStart(7), 'kites/res'.padStart(9), 'storage q/s'.padStart(11), 'p50 ms'.padStart(7), 'p99 ms'.padStart(7), 'ratio'.padStart(6)]
console.log(cols.join('  '))
for (const r of rows) {
  const n = (v: number, w: number): string => Math.round(v).toString().padStart(w)
  const ms = (v: number): string => v.toFixed(3).padStart(7)
  console.log([r.name.padEnd(9), n(r.reg, 7), n(r.kontrol.perSec, 10), ms(r.kontrol.p50), ms(r.kontrol.p99), r.kontrol.found.toFixed(2).padStart(9), n(r.storage.perSec, 11), ms(r.storage.p50), ms(r.storage.p99), (r.kontrol.perSec / r.storage.perSec).toFixed(2).padStart(6)].join('  '))
}
