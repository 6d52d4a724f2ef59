import { Worker } from 'node:worker_threads'
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { KiteClient, type KiteClientOptions } from '../lib/client/client.js'
import { KiteMetrics } from '../lib/observe/metrics.js'
import { kiteTracer } from '../lib/observe/tracing.js'
import { DropExporter } from './drop-exporter.js'

/**
 * Bench cases for metrics and tracing, raw WebSocket, both ends observed
 * (the KiteClient and the kite), against the same kite with nothing installed,
 * all measured in the same run (interleaved with the other cases):
 *
 * - `observe off`: no observer (the baseline of the ratios below);
 * - `metrics on`: kiteMetrics on the kite, a KiteMetrics observer on the client;
 * - `tracing, no-op tracer`: kiteTracing / kiteTracer with no SDK registered;
 * - `tracing, SDK, drop exporter`: an OpenTelemetry SDK (context manager on the
 *   kite, SimpleSpanProcessor, an exporter that drops spans); trace context is sent.
 */
type OneCall = () => Promise<unknown>
export interface ObserveCase {
  name: string
  inFlight: number
  open: () => Promise<{ call: OneCall; close: () => unknown }>
}

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
  metrics: 'metrics on',
  noop: 'tracing, no-op tracer',
  sdk: 'tracing, SDK, drop exporter',
} as const

export async function observeCases(inFlights: number[]): Promise<{ cases: ObserveCase[]; stop: () => void }> {
  const plain = await spawn('plain')
  const sdk = await spawn('sdk')
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new DropExporter())] })
  const cases: ObserveCase[] = []
  for (const inFlight of inFlights) {
    cases.push({ name: NAMES.off, inFlight, open: () => client(plain.urls.off!, {}) })
    cases.push({ name: NAMES.metrics, inFlight, open: () => client(plain.urls.metrics!, { observer: new KiteMetrics() }) })
    cases.push({ name: NAMES.noop, inFlight, open: () => client(plain.urls.noop!, { observer: kiteTracer() }) })
    cases.push({ name: NAMES.sdk, inFlight, open: () => client(sdk.urls.sdk!, { observer: kiteTracer({ tracer: provider.getTracer('bench') }) }) })
  }
  return {
    cases,
    stop: () => {
      plain.worker.postMessage('stop')
      sdk.worker.postMessage('stop')
    },
  }
}

/** The ratios against `observe off`, with the goals. */
export function observeReport(inFlights: number[], callsPerSec: (name: string, inFlight: number) => number): string[] {
  const lines: string[] = []
  for (const inFlight of inFlights) {
    const off = callsPerSec(NAMES.off, inFlight)
    const r = (name: string): string => (callsPerSec(name, inFlight) / off).toFixed(3)
    lines.push(
      `observability vs off, raw WebSocket, ${inFlight} in flight: metrics ${r(NAMES.metrics)}x (goal ≥ 0.95), ` +
        `tracing no-op ${r(NAMES.noop)}x (goal ≥ 0.97), tracing SDK + drop exporter ${r(NAMES.sdk)}x`,
    )
  }
  return lines
}
