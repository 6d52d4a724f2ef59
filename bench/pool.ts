import { Worker } from 'node:worker_threads'
import { KiteClient } from '../lib/client/client.js'
import { kitePool } from '../lib/client/finder.js'
import type { GetKitesResult } from '../lib/protocol/kontrol.js'

interface Measured {
  callsPerSec: number
  p50: number
  p99: number
}

/**
 * The pool case: `square(4)` with 32 calls in flight through `pool.tell`
 * over 3 kites registered with a real Kontrol, against the same through one
 * KiteClient to one of those kites (carrying the same kind of token), in the
 * same run; rounds interleaved, median kept. Goal: the pool costs ≤ 10 % per call.
 */
export async function benchPool(measure: (name: string, inFlight: number, call: () => Promise<unknown>) => Promise<Measured>, rounds: number, seconds: number): Promise<void> {
  const worker = new Worker(new URL('./pool-servers.js', import.meta.url))
  const { kontrolURL, kiteKey } = await new Promise<{ kontrolURL: string; kiteKey: string }>((r) => worker.once('message', r))
  const query = { username: 'bench', environment: 'bench', name: 'math' }
  const finder = new KiteClient(kontrolURL, { auth: { type: 'kiteKey', key: kiteKey } })
  await finder.connect()
  const [one] = ((await finder.tell('getKites', { query })) as GetKitesResult).kites
  await finder.close()

  const inFlight = 32
  const results = { direct: [] as Measured[], pool: [] as Measured[], single: [] as Measured[] }
  const poolOf = (q: typeof query | { id: string }) => kitePool(q, { kontrolURL, auth: { type: 'kiteKey', key: kiteKey }, client: { transport: 'sockjs' } })
  const cases: Array<{ key: keyof typeof results; name: string; open: () => Promise<{ call: () => Promise<unknown>; close: () => Promise<void> }> }> = [
    {
      key: 'direct',
      name: 'one KiteClient, one kite',
      open: async () => {
        const client = new KiteClient(one!.url, { transport: 'sockjs', auth: { type: 'token', key: one!.token } })
        await client.connect()
        return { call: () => client.tell('square', 4), close: () => client.close() }
      },
    },
    {
      key: 'pool',
      name: 'pool.tell, 3 kites',
      open: async () => {
        const pool = poolOf(query)
        await pool.ready
        if (pool.kites.length !== 3) throw new Error(`the pool holds ${pool.kites.length} kites, not 3`)
        return { call: () => pool.tell('square', 4), close: () => pool.close() }
      },
    },
    {
      // The pool's own bookkeeping, without the spread over 3 connections: a pool of that one kite.
      key: 'single',
      name: 'pool.tell, 1 kite',
      open: async () => {
        const pool = poolOf({ id: one!.kite.id })
        await pool.ready
        return { call: () => pool.tell('square', 4), close: () => pool.close() }
      },
    },
  ]
  for (let round = 0; round < rounds; round++) {
    // Each round starts with another case, so that no case always runs first.
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(round + i) % cases.length]!
      const opened = await c.open()
      results[c.key].push(await measure(c.name, inFlight, opened.call))
      await opened.close()
    }
  }
  worker.postMessage('stop')
  const median = (rs: Measured[]): Measured => [...rs].sort((a, b) => a.callsPerSec - b.callsPerSec)[Math.floor(rs.length / 2)]!
  const direct = median(results.direct)
  const pooled = median(results.pool)
  const single = median(results.single)
  console.log('')
  console.log(`pool: square(4), ${inFlight} in flight, SockJS, tokens sent; median of ${rounds} interleaved rounds of ${seconds}s; Kontrol and 3 kites in one worker thread`)
  console.log(['case'.padEnd(30), 'in flight', 'calls/s'.padStart(9), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'vs one'.padStart(8)].join('  '))
  for (const [name, r] of [['one KiteClient, one kite', direct], ['pool.tell (random), 3 kites', pooled], ['pool.tell, a pool of 1 kite', single]] as const) {
    console.log([name.padEnd(30), String(inFlight).padStart(9), r.callsPerSec.toFixed(0).padStart(9), r.p50.toFixed(3).padStart(8), r.p99.toFixed(3).padStart(8), `${(r.callsPerSec / direct.callsPerSec).toFixed(2)}x`.padStart(8)].join('  '))
  }
  console.log(`pool / one KiteClient, ${inFlight} in flight: ${(pooled.callsPerSec / direct.callsPerSec).toFixed(2)}x calls/s (goal ≥ 0.90x: the pool costs ≤ 10 % per call); a pool of the same one kite: ${(single.callsPerSec / direct.callsPerSec).toFixed(2)}x`)
}
