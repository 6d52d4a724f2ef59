/** The one measuring loop of the benches (bench/run.ts, pool.ts, log.ts). */

export interface Measured {
  callsPerSec: number
  /** CPU time of the whole process (client, and the servers' worker thread) per call, µs. */
  cpuPerCall: number
  /** Busy time of the client's thread (event loop utilisation) per call, µs: what the caller pays. */
  clientPerCall: number
  p50: number
  p99: number
}

export type OneCall = () => Promise<unknown>

/** `inFlight` loops of `call` for `seconds` after a 500 ms warm-up: calls/s, latency, process CPU per call. */
export async function measure(inFlight: number, seconds: number, call: OneCall): Promise<Measured> {
  await runSlice(call, inFlight, 500)
  const latencies: number[] = []
  const cpu0 = process.cpuUsage()
  const elu0 = performance.eventLoopUtilization()
  const start = performance.now()
  await runSlice(call, inFlight, seconds * 1000, latencies)
  const elapsed = (performance.now() - start) / 1000
  const cpu = process.cpuUsage(cpu0)
  const elu = performance.eventLoopUtilization(elu0)
  latencies.sort((a, b) => a - b)
  const pick = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!
  return { callsPerSec: latencies.length / elapsed, cpuPerCall: (cpu.user + cpu.system) / latencies.length, clientPerCall: (elu.active * 1000) / latencies.length, p50: pick(0.5), p99: pick(0.99) }
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/**
 * Several cases measured together: `seconds` each, in alternating slices of
 * `sliceMs` (the order shuffled every cycle), so that the machine's drift
 * (a busy neighbour, a CPU changing speed) falls on all of them alike and
 * their ratios keep only what differs between them. After a warm-up of each.
 */
export async function measureGroup(inFlight: number, seconds: number, calls: OneCall[], sliceMs = 100): Promise<Measured[]> {
  for (const call of calls) await runSlice(call, inFlight, 300)
  const acc = calls.map(() => ({ latencies: [] as number[], ms: 0, cpu: 0, active: 0 }))
  const cycles = Math.max(1, Math.round((seconds * 1000) / sliceMs))
  const order = calls.map((_, i) => i)
  for (let cycle = 0; cycle < cycles; cycle++) {
    for (const k of shuffled(order, cycle)) {
      const a = acc[k]!
      const cpu0 = process.cpuUsage()
      const elu0 = performance.eventLoopUtilization()
      const start = performance.now()
      await runSlice(calls[k]!, inFlight, sliceMs, a.latencies)
      a.ms += performance.now() - start
      const cpu = process.cpuUsage(cpu0)
      a.cpu += cpu.user + cpu.system
      a.active += performance.eventLoopUtilization(elu0).active
    }
  }
  return acc.map((a) => {
    const n = a.latencies.length
    a.latencies.sort((x, y) => x - y)
    const pick = (q: number): number => a.latencies[Math.min(n - 1, Math.floor(q * n))]!
    return { callsPerSec: n / (a.ms / 1000), cpuPerCall: a.cpu / n, clientPerCall: (a.active * 1000) / n, p50: pick(0.5), p99: pick(0.99) }
  })
}

/**
 * `items` in a new order for each `round` (a fixed seed, so runs repeat): cases that always
 * followed the same one would always get what it leaves behind (garbage, a cooling cache).
 */
export function shuffled<T>(items: readonly T[], round: number): T[] {
  const out = [...items]
  let seed = (round + 1) * 2654435761
  for (let i = out.length - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    const j = (seed >>> 16) % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

/** `inFlight` loops of `call` for `ms`; returns the calls completed, their latencies (ms) pushed to `latencies` when given. */
export async function runSlice(call: OneCall, inFlight: number, ms: number, latencies: number[] | null = null): Promise<number> {
  const end = performance.now() + ms
  let done = 0
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now()
      await call()
      if (latencies !== null) latencies.push(performance.now() - t0)
      done++
    }
  }))
  return done
}
