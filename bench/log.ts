import { Worker } from 'node:worker_threads'
import pino from 'pino'
import { KiteClient } from '../lib/client/client.js'
import { callLogStart, logCall } from '../lib/methods/call-log.js'
import type { KiteConnection } from '../lib/connection/connection.js'
import type { KiteRequest } from '../lib/methods/request.js'
import { measure, median, type Measured } from './measure.js'

/** In process, no sockets: what `callLogStart` + `logCall` cost per call with the logger at `level`, ns of CPU time (median of 5 × 100,000). */
function inProcessNs(level: 'info' | 'warn'): number {
  const dest = pino.destination({ dest: '/dev/null', sync: true })
  const log = pino({ level }, dest).child({ plugin: 'kite-server', kite: 'math' }).child({ conn: 1, transport: 'websocket', remote: '127.0.0.1' })
  const conn = { log } as unknown as KiteConnection
  const req = { id: 'req-1', method: 'square', username: 'alice', kite: { name: 'calc' }, connection: conn, startedAt: 0 } as unknown as KiteRequest
  const n = 100_000
  const runs: number[] = []
  for (let r = 0; r < 5; r++) {
    // CPU time, not wall time: on a shared machine this process gets a varying share of a core.
    const cpu0 = process.cpuUsage()
    for (let i = 0; i < n; i++) {
      req.startedAt = callLogStart(conn)
      if (req.startedAt !== 0) logCall(req, null)
    }
    const cpu = process.cpuUsage(cpu0)
    runs.push(((cpu.user + cpu.system) * 1000) / n)
  }
  return median(runs)
}

/**
 * The per-call log line (issue 11) in `npm run bench`: `square(4)` over raw
 * WebSocket, 1 and 32 in flight, against five kites in one worker thread:
 * level `warn` (no line) twice (A/A), `info` to /dev/null, `info` to a file,
 * `info` to /dev/null through a synchronous destination; rounds
 * interleaved in rotating order, each case's ratio taken to the `warn` kite
 * of the same round, medians printed. Then the same cost in process.
 */
export async function benchCallLog(rounds: number, seconds: number): Promise<void> {
  const worker = new Worker(new URL('./log-servers.js', import.meta.url))
  const urls = await new Promise<Record<string, string>>((r) => worker.once('message', r))
  const names = Object.keys(urls)
  console.log('')
  console.log(`call log: square(4), raw WebSocket; kites in a worker thread with Fastify's logger (logger.file: pino's asynchronous destination; the last case synchronous) at warn / info; ${rounds} rounds of ${seconds}s per case, interleaved; Node ${process.version}`)
  console.log(['case'.padEnd(23), 'in flight'.padStart(9), 'calls/s'.padStart(9), 'p50 ms'.padStart(8), 'cpu µs/call'.padStart(12), 'vs warn'.padStart(8), 'cpu vs warn'.padStart(12)].join('  '))
  const summary: string[] = []
  for (const inFlight of [1, 32]) {
    const results = names.map(() => [] as Measured[])
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < names.length; i++) {
        const at = (round + i) % names.length
        const client = new KiteClient(urls[names[at]!]!, { transport: 'websocket' })
        await client.connect()
        results[at]!.push(await measure(inFlight, seconds, () => client.tell('square', 4)))
        await client.close()
      }
    }
    const base = results[0]!
    names.forEach((name, i) => {
      const rs = results[i]!
      const speed = median(rs.map((r, k) => r.callsPerSec / base[k]!.callsPerSec))
      const cpu = median(rs.map((r, k) => r.cpuPerCall / base[k]!.cpuPerCall))
      console.log([name.padEnd(23), String(inFlight).padStart(9), median(rs.map((r) => r.callsPerSec)).toFixed(0).padStart(9), median(rs.map((r) => r.p50)).toFixed(3).padStart(8), median(rs.map((r) => r.cpuPerCall)).toFixed(1).padStart(12), `${speed.toFixed(3)}x`.padStart(8), `${cpu.toFixed(3)}x`.padStart(12)].join('  '))
      if (i > 0) summary.push(`${name} at ${inFlight} in flight: ${speed.toFixed(2)}x the calls/s of warn, ${cpu.toFixed(2)}x the CPU per call`)
    })
  }
  worker.postMessage('stop')
  const info = inProcessNs('info')
  const warn = inProcessNs('warn')
  console.log(`call log line: ${summary.join('; ')}`)
  console.log(`call log line, in process (callLogStart + logCall, pino to /dev/null with a synchronous destination, CPU time, median of 5 × 100,000): ${(info - warn).toFixed(0)} ns per call at info (${info.toFixed(0)} ns) vs ${warn.toFixed(0)} ns at warn`)
}

// Run alone: node dist/bench/log.js
if (import.meta.url === `file://${process.argv[1]}`) await benchCallLog(Number(process.env.BENCH_ROUNDS ?? 5), Number(process.env.BENCH_SECONDS ?? 2))
