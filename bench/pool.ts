import { Worker } from 'node:worker_threads'
import { KiteClient } from '../lib/client/client.js'
import { kitePool } from '../lib/client/finder.js'
import type { GetKitesResult } from '../lib/protocol/kontrol.js'
import { measure, median, type Measured, type OneCall } from './measure.js'

/**
 * The pool case of `npm run bench`: `square(4)` with 32 calls in flight
 * through `pool.tell` over 3 kites registered with a real Kontrol, against
 * the same through one KiteClient to one of those kites (carrying a token
 * too), 3 KiteClients (one per kite) chosen at random by hand (the spreading
 * without the pool), and a pool of that one kite (the pool's own
 * bookkeeping); same run,
 * rounds interleaved in rotating order. Printed: medians, and the median of
 * each round's ratio to the KiteClient measured next to it (drift on a shared
 * machine cancels out of those). Goal: the pool costs ≤ 10 % per call.
 */
export async function benchPool(rounds: number, seconds: number): Promise<void> {
  const worker = new Worker(new URL('./pool-servers.js', import.meta.url))
  const { kontrolURL, kiteKey } = await new Promise<{ kontrolURL: string; kiteKey: string }>((r) => worker.once('message', r))
  const query = { username: 'bench', environment: 'bench', name: 'math' }
  const finder = new KiteClient(kontrolURL, { auth: { type: 'kiteKey', key: kiteKey } })
  await finder.connect()
  const found = ((await finder.tell('getKites', { query })) as GetKitesResult).kites
  const one = found[0]
  await finder.close()

  const inFlight = 32
  const poolOf = (q: typeof query | { id: string }) => kitePool(q, { kontrolURL, auth: { type: 'kiteKey', key: kiteKey }, client: { transport: 'sockjs' } })
  const cases: Array<{ name: string; open: () => Promise<{ call: OneCall; close: () => Promise<void> }> }> = [
    {
      name: 'one KiteClient, one kite',
      open: async () => {
        const client = new KiteClient(one!.url, { transport: 'sockjs', auth: { type: 'token', key: one!.token } })
        await client.connect()
        return { call: () => client.tell('square', 4), close: () => client.close() }
      },
    },
    {
      name: 'pool.tell (random), 3 kites',
      open: async () => {
        const pool = poolOf(query)
        await pool.ready
        if (pool.kites.length !== 3) throw new Error(`the pool holds ${pool.kites.length} kites, not 3`)
        return { call: () => pool.tell('square', 4), close: () => pool.close() }
      },
    },
    {
      // What a caller does without a pool: the same 3 kites, one KiteClient each, one chosen at random per call.
      name: '3 KiteClients, random by hand',
      open: async () => {
        const clients = found.map((k) => new KiteClient(k.url, { transport: 'sockjs', auth: { type: 'token', key: k.token } }))
        await Promise.all(clients.map((c) => c.connect()))
        return { call: () => clients[Math.floor(Math.random() * clients.length)]!.tell('square', 4), close: async () => void (await Promise.all(clients.map((c) => c.close()))) }
      },
    },
    {
      name: 'pool.tell, a pool of 1 kite',
      open: async () => {
        const pool = poolOf({ id: one!.kite.id })
        await pool.ready
        return { call: () => pool.tell('square', 4), close: () => pool.close() }
      },
    },
  ]
  const results = cases.map(() => [] as Measured[])
  for (let round = 0; round < rounds; round++) {
    // Each round starts with another case, so that none always runs first.
    for (let i = 0; i < cases.length; i++) {
      const at = (round + i) % cases.length
      const opened = await cases[at]!.open()
      results[at]!.push(await measure(inFlight, seconds, opened.call))
      await opened.close()
    }
  }
  worker.postMessage('stop')

  const base = results[0]!
  console.log('')
  console.log(`pool: square(4), ${inFlight} in flight, SockJS, tokens sent; ${rounds} rounds of ${seconds}s per case, interleaved; Kontrol and 3 kites in one worker thread, Node ${process.version}`)
  console.log('ratios: the median over rounds of (case ÷ the KiteClient of the same round); cpu: the whole process (client and servers) per call; client: the caller thread\'s busy time per call')
  console.log(['case'.padEnd(30), 'calls/s'.padStart(9), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'cpu µs/call'.padStart(12), 'client µs/call'.padStart(15), 'calls/s ratio'.padStart(14), 'cpu ratio'.padStart(10), 'client ratio'.padStart(13)].join('  '))
  const ratios: Array<{ speed: number; cpu: number; client: number }> = []
  cases.forEach((c, i) => {
    const rs = results[i]!
    const speed = median(rs.map((r, k) => r.callsPerSec / base[k]!.callsPerSec))
    const cpu = median(rs.map((r, k) => r.cpuPerCall / base[k]!.cpuPerCall))
    const client = median(rs.map((r, k) => r.clientPerCall / base[k]!.clientPerCall))
    ratios.push({ speed, cpu, client })
    console.log([c.name.padEnd(30), median(rs.map((r) => r.callsPerSec)).toFixed(0).padStart(9), median(rs.map((r) => r.p50)).toFixed(3).padStart(8), median(rs.map((r) => r.p99)).toFixed(3).padStart(8), median(rs.map((r) => r.cpuPerCall)).toFixed(1).padStart(12), median(rs.map((r) => r.clientPerCall)).toFixed(1).padStart(15), `${speed.toFixed(2)}x`.padStart(14), `${cpu.toFixed(2)}x`.padStart(10), `${client.toFixed(2)}x`.padStart(13)].join('  '))
  })
  const line = (r: { speed: number; cpu: number; client: number }): string => `${r.speed.toFixed(2)}x calls/s, ${r.cpu.toFixed(2)}x CPU per call, ${r.client.toFixed(2)}x caller time per call`
  console.log(`pool over 3 kites vs one KiteClient, ${inFlight} in flight: ${line(ratios[1]!)}; a pool of the same one kite: ${line(ratios[3]!)} (goal: the pool costs ≤ 10 % per call)`)
  // Spreading 32 calls over 3 connections sends ~3 times as many frames (fewer messages batched in each), pool or not.
  const byHand = median(results[1]!.map((r, k) => r.callsPerSec / results[2]![k]!.callsPerSec))
  console.log(`pool over 3 kites vs 3 KiteClients chosen at random by hand (the same spreading, no pool), ${inFlight} in flight: ${byHand.toFixed(2)}x calls/s (median of per-round ratios)`)
}

// Run alone: node dist/bench/pool.js (BENCH_ROUNDS, BENCH_SECONDS as npm run bench).
if (import.meta.url === `file://${process.argv[1]}`) await benchPool(Number(process.env.BENCH_ROUNDS ?? 5), Number(process.env.BENCH_SECONDS ?? 2))
