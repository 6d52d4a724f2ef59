import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { KiteClient } from '../lib/client/client.js'

/**
 * Kontrol's token signing under load. Each mode is a Kontrol in a process of
 * its own (bench/kontrol-child.ts, memory storage, BENCH_KITES = 10,000 kites);
 * the clients run in this process, over raw WebSocket on loopback, the pinger in a thread of its own.
 *  - cold getKites/s: one exact (username, environment, name) query per kite,
 *    all BENCH_KITES of them, 32 in flight: every answer carries a token for a
 *    new audience, so every call waits for one RS256 signing. Each round asks
 *    as a new requester, so nothing is cached from the round before.
 *  - warm getKites/s: the same queries again, same requester: tokens cached.
 *  - ping p50/p99: kite.ping from another connection, one at a time, during the cold load.
 * Modes, interleaved round by round (medians over BENCH_ROUNDS, default 3):
 *  - event loop: signingThreads 0 (signs synchronously, the way Kontrol signed before)
 *  - thread pool: the default signingThreads (one per CPU, within UV_THREADPOOL_SIZE)
 *  - BENCH_THREADS=1,4 adds modes with these signingThreads (to size the option)
 *  - main: BENCH_MAIN_DIST, when set, names another build's dist folder (e.g. main's
 *    code built with `tsc -p /work/main --outDir DIR`): the code before this change.
 *   npm run build && node dist/bench/kontrol-signing.js
 */
const KITES = Number(process.env.BENCH_KITES ?? 10_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const IN_FLIGHT = 32
const COLD_GOAL = 1.8
const PING_GOAL_MS = 5

interface Mode {
  name: string
  env: Record<string, string>
}
const modes: Mode[] = [
  { name: 'event loop (signingThreads 0)', env: { BENCH_SIGNING_THREADS: '0' } },
  { name: 'thread pool (default)', env: {} },
]
// BENCH_THREADS=1,4: more modes with these signingThreads, to size the option.
for (const n of (process.env.BENCH_THREADS ?? '').split(',').filter((x) => x !== '')) modes.splice(-1, 0, { name: `thread pool (signingThreads ${n})`, env: { BENCH_SIGNING_THREADS: n } })
if (process.env.BENCH_MAIN_DIST !== undefined) modes.unshift({ name: 'main (before)', env: { BENCH_KONTROL_DIST: process.env.BENCH_MAIN_DIST } })

interface Started {
  child: ChildProcess
  url: string
  keys: Record<string, string>
  per: number
  cpus: number
  /** The other client: a thread of its own pinging this Kontrol (bench/kontrol-pinger.ts). */
  pinger: Worker
}

async function start(mode: Mode): Promise<Started> {
  const child = fork(fileURLToPath(new URL('./kontrol-child.js', import.meta.url)), {
    env: { ...process.env, ...mode.env, BENCH_KITES: String(KITES), BENCH_REQUESTERS: String(ROUNDS) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const [ready] = (await once(child, 'message')) as [{ url: string; keys: Record<string, string>; per: number; cpus: number }]
  const pinger = new Worker(fileURLToPath(new URL('./kontrol-pinger.js', import.meta.url)), { workerData: { url: ready.url, key: ready.keys.pinger } })
  await once(pinger, 'message')
  return { child, ...ready, pinger }
}

function shuffle(xs: number[]): number[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[xs[i], xs[j]] = [xs[j]!, xs[i]!]
  }
  return xs
}

const quantile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN
const median = (xs: number[]): number => quantile([...xs].sort((a, b) => a - b), 0.5)

/** Every kite queried once, IN_FLIGHT at a time; with `pinger`, pings one at a time until done. */
async function load(k: Started, finder: KiteClient, order: number[], ping: boolean): Promise<{ perSec: number; pings: number[] }> {
  let next = 0
  if (ping) k.pinger.postMessage('start')
  const start = performance.now()
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < order.length) {
      const i = order[next++]!
      const q = { username: `user${Math.floor(i / (k.per * k.per))}`, environment: `env${Math.floor(i / k.per) % k.per}`, name: `kite${i % k.per}` }
      const { kites } = (await finder.tell('getKites', { query: q })) as { kites: Array<{ token: string }> }
      if (kites.length !== 1 || typeof kites[0]!.token !== 'string') throw new Error(`expected one kite with a token for ${JSON.stringify(q)}`)
    }
  }))
  const perSec = order.length / ((performance.now() - start) / 1000)
  if (!ping) return { perSec, pings: [] }
  k.pinger.postMessage('stop')
  const [pings] = (await once(k.pinger, 'message')) as [number[]]
  return { perSec, pings: pings.sort((a, b) => a - b) }
}

const started: Started[] = []
for (const m of modes) started.push(await start(m))
const results = modes.map(() => ({ cold: [] as number[], warm: [] as number[], p50: [] as number[], p99: [] as number[] }))
try {
  for (let r = 0; r < ROUNDS; r++) {
    const order = shuffle(Array.from({ length: KITES }, (_, i) => i))
    // Interleaved: the order of the modes turns each round, so neither always runs first.
    for (let j = 0; j < modes.length; j++) {
      const m = (j + r) % modes.length
      const k = started[m]!
      const finder = new KiteClient(k.url, { transport: 'websocket', auth: { type: 'kiteKey', key: k.keys[`finder${r}`]! }, kite: { name: 'finder', username: `finder${r}` }, timeout: 120_000 })
      await finder.connect()
      const cold = await load(k, finder, order, true)
      const warm = await load(k, finder, order, false)
      await finder.close()
      const res = results[m]!
      res.cold.push(cold.perSec)
      res.warm.push(warm.perSec)
      res.p50.push(quantile(cold.pings, 0.5))
      res.p99.push(quantile(cold.pings, 0.99))
      console.error(`round ${r + 1}/${ROUNDS} ${modes[m]!.name}: cold ${Math.round(cold.perSec)}/s, warm ${Math.round(warm.perSec)}/s, ping p99 ${quantile(cold.pings, 0.99).toFixed(2)} ms (${cold.pings.length} pings)`)
    }
  }
} finally {
  for (const k of started) {
    k.pinger.postMessage('close')
    await once(k.pinger, 'exit')
    k.child.disconnect()
  }
}

const eventLoop = modes.findIndex((m) => m.name.startsWith('event loop'))
const main = modes.findIndex((m) => m.name.startsWith('main'))
const baseline = main >= 0 ? main : eventLoop
const cold = (i: number): number => median(results[i]!.cold)
console.log(`Kontrol signing, Node ${process.version}, ${started[0]!.cpus} CPUs, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}; Kontrol in its own process (memory storage), getKites clients in this one, the pinger in a worker thread, raw WebSocket, loopback`)
console.log(`cold: getKites for each of ${KITES} distinct kites once, ${IN_FLIGHT} in flight, each answer a new RS256 token; warm: the same again (tokens cached); ping: kite.ping from another connection during the cold load`)
console.log(`medians of ${ROUNDS} interleaved rounds; ratio = cold getKites/s ÷ that of ${modes[baseline]!.name}${main >= 0 ? '; ÷ loop = ÷ that of the event-loop mode' : ''}`)
const pad = (s: string, n: number): string => s.padStart(n)
console.log(['mode'.padEnd(34), pad('cold/s', 8), pad('warm/s', 8), pad('ping p50', 9), pad('ping p99', 9), pad('ratio', 6), ...(main >= 0 ? [pad('÷ loop', 6)] : [])].join('  '))
modes.forEach((m, i) => {
  const r = results[i]!
  const cells = [m.name.padEnd(34), pad(String(Math.round(cold(i))), 8), pad(String(Math.round(median(r.warm))), 8), pad(median(r.p50).toFixed(2), 9), pad(median(r.p99).toFixed(2), 9), pad((cold(i) / cold(baseline)).toFixed(2), 6)]
  if (main >= 0) cells.push(pad((cold(i) / cold(eventLoop)).toFixed(2), 6))
  console.log(cells.join('  '))
})
const pool = modes.length - 1
const ratio = cold(pool) / cold(baseline)
const p99 = median(results[pool]!.p99)
if (main < 0) console.log('the event-loop mode already parses each key once; the code before this change parsed the PEM per token (3–4× slower here): BENCH_MAIN_DIST=<its dist folder> measures it in the same run')
console.log(`goal: cold getKites (thread pool, default) ≥ ${COLD_GOAL}× ${modes[baseline]!.name}: ${ratio.toFixed(2)}× ${ratio >= COLD_GOAL ? 'met' : 'NOT met'}; its ping p99 during the cold load ≤ ${PING_GOAL_MS} ms: ${p99.toFixed(2)} ms ${p99 <= PING_GOAL_MS ? 'met' : 'NOT met'}`)
