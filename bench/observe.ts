import { Worker } from 'node:worker_threads'
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { KiteClient, type KiteClientOptions } from '../lib/client/client.js'
import { KiteMetrics } from '../lib/observe/metrics.js'
import { kiteTracer } from '../lib/observe/tracing.js'
import type { KiteObserver } from '../lib/observe/observer.js'
import type { KiteConnection } from '../lib/connection/connection.js'
import { DropExporter } from './drop-exporter.js'

/**
 * The bench of metrics and tracing, raw WebSocket, both ends observed
 * (the KiteClient and the kite), against the same kite with nothing installed,
 * all measured in the same run (interleaved with the other cases):
 *
 * - `observe off`: no observer (the baseline of the ratios below), and a second
 *   identical kite as an A/A control: its ratio shows the noise of the run;
 * - `metrics on`: kiteMetrics on the kite, a KiteMetrics observer on the client;
 * - `tracing, no-op tracer`: kiteTracing / kiteTracer with no SDK registered;
 * - `tracing, SDK, drop exporter`: an OpenTelemetry SDK (context manager on the
 *   kite, SimpleSpanProcessor, an exporter that drops spans); trace context is sent.
 */
type OneCall = () => Promise<unknown>

function spawn(mode: 'plain' | 'sdk'): Promise<{ worker: Worker; urls: Record<string, string> }> {
  const worker = new Worker(new URL('./observe-servers.js', import.meta.url), { workerData: mode })
  return new Promise((resolve) => worker.once('message', (urls: Record<string, string>) => resolve({ worker, urls })))
}

async function client(url: string, options: KiteClientOptions): Promise<{ call: OneCall; close: () => Promise<void> }> {
  const c = new KiteClient(url, { transport: 'websocket', ...options })
  await c.connect()
  return { call: () => c.tell('square', 4), close: () => c.close() }
}

export const NAMES = {
  off: 'observe off (raw WS)',
  off2: 'observe off, 2nd kite (A/A)',
  metrics: 'metrics on',
  noop: 'tracing, no-op tracer',
  sdk: 'tracing, SDK, drop exporter',
} as const

type Opened = { call: OneCall; close: () => unknown }

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

/** Runs `inFlight` loops of `call` for `ms`; returns the calls completed. */
async function slice(call: OneCall, inFlight: number, ms: number): Promise<number> {
  const end = performance.now() + ms
  let done = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        await call()
        done++
      }
    }),
  )
  return done
}

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
  const SLICE_MS = 200
  let lastOffPerSec = 0
  const lines: string[] = []
  lines.push(`observability: square(4), raw WebSocket, both ends observed; ${SLICE_MS} ms slices alternating between the cases, ${seconds}s per case in all; ratios against "observe off" in the same run`)
  lines.push(['case'.padEnd(30), 'in flight', 'calls/s'.padStart(9), 'vs off'.padStart(8)].join('  '))
  for (const inFlight of inFlights) {
    const opened: Array<[string, Opened]> = [
      [NAMES.off, await client(plain.urls.off!, {})],
      [NAMES.off2, await client(plain.urls.off2!, {})],
      [NAMES.metrics, await client(plain.urls.metrics!, { observer: new KiteMetrics() })],
      [NAMES.noop, await client(plain.urls.noop!, { observer: kiteTracer() })],
      [NAMES.sdk, await client(sdk.urls.sdk!, { observer: kiteTracer({ tracer: provider.getTracer('bench') }) })],
    ]
    for (const [, o] of opened) await slice(o.call, inFlight, 300) // warm up
    const totals = new Map<string, number>(opened.map(([name]) => [name, 0]))
    const rounds = Math.max(1, Math.round((seconds * 1000) / SLICE_MS))
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < opened.length; i++) {
        const [name, o] = opened[(i + round) % opened.length]!
        totals.set(name, totals.get(name)! + (await slice(o.call, inFlight, SLICE_MS)))
      }
    }
    for (const [, o] of opened) await o.close()
    const perSec = (name: string): number => totals.get(name)! / ((rounds * SLICE_MS) / 1000)
    const off = perSec(NAMES.off)
    lastOffPerSec = off
    for (const [name] of opened) {
      lines.push([name.padEnd(30), String(inFlight).padStart(9), perSec(name).toFixed(0).padStart(9), `${(perSec(name) / off).toFixed(3)}x`.padStart(8)].join('  '))
    }
    lines.push(
      `${inFlight} in flight: A/A control (two identical kites, nothing installed) ${(perSec(NAMES.off2) / off).toFixed(3)}x; metrics on / off ${(perSec(NAMES.metrics) / off).toFixed(3)}x (goal ≥ 0.95), ` +
        `no-op tracing / off ${(perSec(NAMES.noop) / off).toFixed(3)}x (goal ≥ 0.97), SDK tracing + drop exporter / off ${(perSec(NAMES.sdk) / off).toFixed(3)}x`,
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
