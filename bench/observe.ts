import { Worker } from 'node:worker_threads'
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { KiteClient } from '../lib/client/client.js'
import { KiteMetrics } from '../lib/observe/metrics.js'
import { kiteTracer } from '../lib/observe/tracing.js'
import type { KiteObserver } from '../lib/observe/observer.js'
import type { KiteConnection } from '../lib/connection/connection.js'
import { DropExporter } from './drop-exporter.js'
import { median, runSlice, shuffled } from './measure.js'

/**
 * The bench of metrics and tracing, raw WebSocket, both ends observed
 * (the KiteClient and the kite), against nothing installed, all measured in
 * the same run, in alternating slices:
 *
 * - `observe off`: no observer (the baseline of the ratios below), measured
 *   twice per round in slices of its own: the second (`off again`) is the
 *   A/A control, its ratio the noise of the run;
 * - `metrics on`: kiteMetrics' observer on the kite, a KiteMetrics on the client;
 * - `tracing, no-op tracer`: a kiteTracer with no SDK registered on both ends;
 * - `tracing, SDK, drop exporter`: an OpenTelemetry SDK (context manager on the
 *   kite, SimpleSpanProcessor, an exporter that drops spans); trace context is
 *   sent. Its own kite (an SDK's context manager is process-wide).
 *
 * The first four are one kite and one connection whose observers are switched
 * between slices (`app.kite.addObserver`/`removeObserver`, `client.observer`):
 * two identical kites on two sockets differ by a few percent in the same run,
 * as much as what is measured here.
 */
type OneCall = () => Promise<unknown>

function spawn(mode: 'plain' | 'sdk'): Promise<{ worker: Worker; urls: Record<string, string> }> {
  const worker = new Worker(new URL('./observe-servers.js', import.meta.url), { workerData: mode })
  return new Promise((resolve) => worker.once('message', (urls: Record<string, string>) => resolve({ worker, urls })))
}

/** Switches the observers of the plain kite (in its worker) and waits until it has. */
function observeOnServer(worker: Worker, observe: 'off' | 'metrics' | 'noop'): Promise<void> {
  return new Promise((resolve) => {
    worker.once('message', () => resolve())
    worker.postMessage({ observe })
  })
}

export const NAMES = {
  off: 'observe off (raw WS)',
  off2: 'observe off again (A/A)',
  metrics: 'metrics on',
  noop: 'tracing, no-op tracer',
  sdk: 'tracing, SDK, drop exporter',
} as const

/** One case: what to switch on before its slice, and the call to make. */
type Case = { before: () => Promise<void>; call: OneCall }

/**
 * What an observer adds to one call, in µs: a server and a client observation
 * (start and end) on a fake connection, in a tight loop, against an observer
 * that does nothing. Less exposed to the machine's drift than calls over sockets.
 */
function observerCost(make: () => KiteObserver): number {
  const conn = { transport: 'websocket', remoteAddress: '127.0.0.1', remoteKite: null } as unknown as KiteConnection
  const caller = { name: 'c', username: 'u', id: 'i', environment: 'e', region: 'r', version: '1.0.0', hostname: 'h' }
  const observer = make()
  const loop = (n: number): number => {
    const t0 = performance.now()
    for (let i = 0; i < n; i++) {
      const s = observer.serverCall({ method: 'square', caller, connection: conn, traceContext: null })
      if (s !== null) {
        s.run(() => i)
        s.end(null)
      }
      observer.clientCall('square', conn)?.end(null)
    }
    return ((performance.now() - t0) * 1000) / n
  }
  loop(20000)
  const runs = [loop(100000), loop(100000), loop(100000)].sort((a, b) => a - b)
  return runs[1]!
}

/** Runs `inFlight` loops of `call` for `ms`: the calls completed, and the process's CPU time (both threads) per call in µs. */
async function slice(call: OneCall, inFlight: number, ms: number): Promise<{ calls: number; cpuUs: number }> {
  const cpu0 = process.cpuUsage()
  const done = await runSlice(call, inFlight, ms)
  const cpu = process.cpuUsage(cpu0)
  return { calls: done, cpuUs: (cpu.user + cpu.system) / done }
}

type Counts = Map<string, Array<{ calls: number; cpuUs: number }>>

/** A warm-up slice of each case, then `rounds` rounds of one slice per case in a new order each round. */
async function runPhase(cases: Array<[string, Case]>, inFlight: number, rounds: number): Promise<Counts> {
  for (const [, c] of cases) {
    await c.before()
    await slice(c.call, inFlight, 300)
  }
  const counts: Counts = new Map(cases.map(([name]) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const [name, c] of shuffled(cases, round)) {
      await c.before()
      counts.get(name)!.push(await slice(c.call, inFlight, SLICE_MS))
    }
  }
  return counts
}

const SLICE_MS = 200

/**
 * Measures the four cases in alternating short slices (SLICE_MS each, the
 * order rotating every round) on connections kept open, and sums each case's
 * calls: on a machine whose speed drifts, every case sees the same drift.
 * Prints calls/s and the ratios against `observe off`.
 */
export async function runObserveBench(inFlights: number[], seconds: number): Promise<string[]> {
  const plain = await spawn('plain')
  const sdk = await spawn('sdk')
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new DropExporter())] })
  let lastOffPerSec = 0
  const lines: string[] = []
  lines.push(`observability: square(4), raw WebSocket, both ends observed; ${SLICE_MS} ms slices alternating between the cases, ${seconds}s per case in all; the off, metrics and no-op cases on one kite and connection with observers switched between slices; calls/s: median slice; ratios: median over the rounds of each case's calls / the mean of the round's two off slices, and of their CPU time per call (process, both threads) / each case's; the SDK case in a phase of its own against off`)
  lines.push(['case'.padEnd(30), 'in flight', 'calls/s'.padStart(9), 'vs off'.padStart(8), 'CPU vs off'.padStart(10)].join('  '))
  const clientMetrics = new KiteMetrics()
  const clientTracer = kiteTracer()
  for (const inFlight of inFlights) {
    const kite = new KiteClient(plain.urls.kite!, { transport: 'websocket' })
    await kite.connect()
    const traced = new KiteClient(sdk.urls.sdk!, { transport: 'websocket', observer: kiteTracer({ tracer: provider.getTracer('bench') }) })
    await traced.connect()
    const onKite = (observe: 'off' | 'metrics' | 'noop', observer: KiteObserver | null): Case => ({
      before: async () => {
        await observeOnServer(plain.worker, observe)
        kite.observer = observer
      },
      call: () => kite.tell('square', 4),
    })
    const cases: Array<[string, Case]> = [
      [NAMES.off, onKite('off', null)],
      [NAMES.off2, onKite('off', null)],
      [NAMES.metrics, onKite('metrics', clientMetrics)],
      [NAMES.noop, onKite('noop', clientTracer)],
    ]
    const sdkCase: Case = { before: async () => {}, call: () => traced.tell('square', 4) }
    const rounds = Math.max(1, Math.round((seconds * 1000) / SLICE_MS))
    const counts = await runPhase(cases, inFlight, rounds)
    // The SDK case on its own, alternating with off: its spans (made on this thread too) leave
    // garbage whose collection would fall on whichever slice came next.
    const sdkCounts = await runPhase([[NAMES.off, onKite('off', null)], [NAMES.sdk, sdkCase]], inFlight, Math.max(1, Math.round(rounds / 2)))
    await kite.close()
    await traced.close()
    // Per round, each case's calls over the baseline's: the two off slices of that round (their
    // mean), so that neither alone biases every ratio; the median of those over the rounds: a
    // stall of the machine (or a major GC) lands in a slice or two and moves a sum, not a median.
    // The same for CPU time per call (baseline / case, so that below 1 is a cost too): what a busy
    // machine does to the wall clock, it does less to CPU time.
    const off = counts.get(NAMES.off)!
    const off2 = counts.get(NAMES.off2)!
    const baseCalls = (r: number): number => (off[r]!.calls + off2[r]!.calls) / 2
    const baseCpu = (r: number): number => (off[r]!.cpuUs + off2[r]!.cpuUs) / 2
    const ratio = (name: string): number => median(counts.get(name)!.map((x, r) => x.calls / baseCalls(r)))
    const cpuRatio = (name: string): number => median(counts.get(name)!.map((x, r) => baseCpu(r) / x.cpuUs))
    const aa = median(off2.map((x, r) => x.calls / off[r]!.calls))
    const aaCpu = median(off2.map((x, r) => off[r]!.cpuUs / x.cpuUs))
    const sdkOff = sdkCounts.get(NAMES.off)!
    const sdkRatio = median(sdkCounts.get(NAMES.sdk)!.map((x, r) => x.calls / sdkOff[r]!.calls))
    const sdkCpu = median(sdkCounts.get(NAMES.sdk)!.map((x, r) => sdkOff[r]!.cpuUs / x.cpuUs))
    const perSec = (xs: Array<{ calls: number }>): number => median(xs.map((x) => x.calls)) / (SLICE_MS / 1000)
    lastOffPerSec = perSec(off)
    const row = (name: string, calls: number, r: number, c: number): string =>
      [name.padEnd(30), String(inFlight).padStart(9), calls.toFixed(0).padStart(9), `${r.toFixed(3)}x`.padStart(8), `${c.toFixed(3)}x`.padStart(10)].join('  ')
    lines.push(row(NAMES.off, perSec(off), 1, 1))
    lines.push(row(NAMES.off2, perSec(off2), aa, aaCpu))
    for (const name of [NAMES.metrics, NAMES.noop]) lines.push(row(name, perSec(counts.get(name)!), ratio(name), cpuRatio(name)))
    lines.push(row(NAMES.sdk, perSec(sdkCounts.get(NAMES.sdk)!), sdkRatio, sdkCpu))
    const both = (name: string): string => `${ratio(name).toFixed(3)}x (CPU ${cpuRatio(name).toFixed(3)}x)`
    lines.push(
      `${inFlight} in flight: A/A control (off again / off, nothing installed) ${aa.toFixed(3)}x (CPU ${aaCpu.toFixed(3)}x); against the two off slices of each round: metrics on ${both(NAMES.metrics)} (goal ≥ 0.95), ` +
        `no-op tracing ${both(NAMES.noop)} (goal ≥ 0.97); SDK tracing + drop exporter (its own kite, its own phase) / off ${sdkRatio.toFixed(3)}x (CPU ${sdkCpu.toFixed(3)}x)`,
    )
  }
  plain.worker.postMessage('stop')
  sdk.worker.postMessage('stop')
  const nothing = { traceContext: null, run: <T>(fn: () => T): T => fn(), end: () => {} }
  const base = observerCost(() => ({ serverCall: () => nothing, clientCall: () => nothing }))
  const costs: Array<[string, number]> = [
    ['metrics', observerCost(() => new KiteMetrics())],
    ['no-op tracing', observerCost(() => kiteTracer())],
    ['SDK tracing + drop exporter', observerCost(() => kiteTracer({ tracer: provider.getTracer('bench') }))],
  ]
  lines.push(
    `observer cost per call (server + client observation, in-process, median of 3 × 100,000, minus an observer doing nothing at ${base.toFixed(3)} µs): ` +
      costs.map(([name, us]) => `${name} ${(us - base).toFixed(3)} µs`).join(', ') +
      `; a call over raw WebSocket costs ${(1e6 / lastOffPerSec).toFixed(1)} µs at the 32-in-flight rate measured above`,
  )
  return lines
}
