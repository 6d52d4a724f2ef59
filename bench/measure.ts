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
  const warmEnd = Date.now() + 500
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (Date.now() < warmEnd) await call()
  }))
  const latencies: number[] = []
  const cpu0 = process.cpuUsage()
  const elu0 = performance.eventLoopUtilization()
  const start = performance.now()
  const end = start + seconds * 1000
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now()
      await call()
      latencies.push(performance.now() - t0)
    }
  }))
  const elapsed = (performance.now() - start) / 1000
  const cpu = process.cpuUsage(cpu0)
  const elu = performance.eventLoopUtilization(elu0)
  latencies.sort((a, b) => a - b)
  const pick = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!
  return { callsPerSec: latencies.length / elapsed, cpuPerCall: (cpu.user + cpu.system) / latencies.length, clientPerCall: (elu.active * 1000) / latencies.length, p50: pick(0.5), p99: pick(0.99) }
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
