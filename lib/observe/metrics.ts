import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { KiteConnection } from '../connection/connection.js'
import { errorType, passThrough, type CallObservation, type ClientCallObservation, type KiteObserver, type ServerCallInfo } from './observer.js'

/** Options of `KiteMetrics` (and of the `kiteMetrics` plugin). */
export interface KiteMetricsOptions {
  /** The prom-client registry the metrics go to; pass your app's own to get one endpoint. Default: a new Registry. */
  registry?: Registry
  /** Prefix of every metric name. Default `kite_`. */
  prefix?: string
  /** Upper bounds (seconds) of the call duration histograms. */
  buckets?: number[]
}

/** What the connection gauges read at scrape time. */
export interface ConnectionSource {
  readonly connections: Iterable<KiteConnection>
}

/** Kontrol's counts (see `app.kontrol.stats()`). */
export interface KontrolCounts {
  kitesRegistered: number
  registrations: number
  getKites: number
  tokensSigned: number
  heartbeatsMissed: number
}

/** Default duration buckets, in seconds: 100 µs to 10 s. */
export const DEFAULT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

interface Children {
  calls: Counter.Internal
  duration: Histogram.Internal<string>
  errors: Map<string, Counter.Internal>
}

/** Per-method children of a (calls, errors, duration) triple, made once per method name. */
class CallMetrics {
  private readonly byMethod = new Map<string, Children>()

  constructor(
    private readonly calls: Counter<'method'>,
    private readonly errors: Counter<'method' | 'type'>,
    private readonly duration: Histogram<'method'>,
  ) {}

  of(method: string): Children {
    let c = this.byMethod.get(method)
    if (c === undefined) {
      c = { calls: this.calls.labels(method), duration: this.duration.labels(method), errors: new Map() }
      this.byMethod.set(method, c)
    }
    return c
  }

  failed(c: Children, method: string, err: unknown): void {
    const type = errorType(err)
    let e = c.errors.get(type)
    if (e === undefined) {
      e = this.errors.labels(method, type)
      c.errors.set(type, e)
    }
    e.inc()
  }
}

class Timing implements CallObservation, ClientCallObservation {
  readonly traceContext = null
  readonly run = passThrough
  private readonly start = performance.now()

  constructor(
    private readonly metrics: CallMetrics,
    private readonly children: Children,
    private readonly method: string,
  ) {}

  end(error: unknown): void {
    const c = this.children
    c.calls.inc()
    c.duration.observe((performance.now() - this.start) / 1000)
    if (error !== null && error !== undefined) this.metrics.failed(c, this.method, error)
  }
}

/**
 * Prometheus metrics of kite calls with prom-client: an observer (install it
 * with `app.kite.addObserver`, or `new KiteClient(url, { observer })`) and
 * gauges read at scrape time. Metric names (with the default prefix):
 *
 * - `kite_calls_total{method}`, `kite_call_errors_total{method,type}`, `kite_call_duration_seconds{method}`:
 *   calls served by this kite (the error type is the kite error type on the wire);
 * - `kite_client_calls_total{method}`, `kite_client_call_errors_total{method,type}`,
 *   `kite_client_call_duration_seconds{method}`: calls made to peers (KiteClient, pools, `conn.tell`);
 * - `kite_connections{transport}`, `kite_callbacks_held`: connected peers and the callbacks they may still call;
 * - `kite_kontrol_kites_registered`, `kite_kontrol_registrations_total`, `kite_kontrol_getkites_total`,
 *   `kite_kontrol_tokens_signed_total`, `kite_kontrol_heartbeats_missed_total`: Kontrol's, when watched.
 */
export class KiteMetrics implements KiteObserver {
  readonly registry: Registry
  readonly prefix: string
  private readonly server: CallMetrics
  private readonly client: CallMetrics
  private readonly sources: ConnectionSource[] = []
  private kontrolCounts: (() => KontrolCounts) | null = null

  constructor(options: KiteMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry()
    this.prefix = options.prefix ?? 'kite_'
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(this.prefix)) throw new TypeError(`kiteMetrics prefix ${this.prefix} is not a valid metric name prefix`)
    const buckets = options.buckets ?? DEFAULT_BUCKETS
    const registers = [this.registry]
    const p = this.prefix
    this.server = new CallMetrics(
      new Counter({ name: `${p}calls_total`, help: 'Calls handled by this kite, by method', labelNames: ['method'], registers }),
      new Counter({ name: `${p}call_errors_total`, help: 'Calls this kite answered with an error, by method and kite error type', labelNames: ['method', 'type'], registers }),
      new Histogram({ name: `${p}call_duration_seconds`, help: 'Time from a call arriving to its answer, by method', labelNames: ['method'], buckets, registers }),
    )
    this.client = new CallMetrics(
      new Counter({ name: `${p}client_calls_total`, help: 'Calls made to other kites, by remote method', labelNames: ['method'], registers }),
      new Counter({ name: `${p}client_call_errors_total`, help: 'Calls to other kites that failed, by remote method and kite error type', labelNames: ['method', 'type'], registers }),
      new Histogram({ name: `${p}client_call_duration_seconds`, help: 'Time from sending a call to its answer, by remote method', labelNames: ['method'], buckets, registers }),
    )
    const sources = this.sources
    new Gauge({
      name: `${p}connections`,
      help: 'Connected peers, by transport',
      labelNames: ['transport'],
      registers,
      collect() {
        this.reset()
        const counts = new Map<string, number>()
        for (const s of sources) for (const conn of s.connections) counts.set(conn.transport, (counts.get(conn.transport) ?? 0) + 1)
        for (const [transport, n] of counts) this.set({ transport }, n)
      },
    })
    new Gauge({
      name: `${p}callbacks_held`,
      help: 'Callbacks peers may still call (held until their connection closes)',
      registers,
      collect() {
        let n = 0
        for (const s of sources) for (const conn of s.connections) n += conn.callbackCount
        this.set(n)
      },
    })
  }

  /** Counts the connections (and their callbacks) of `source` (e.g. `app.kite`) in the gauges. */
  watchConnections(source: ConnectionSource): this {
    this.sources.push(source)
    return this
  }

  /** Exports Kontrol's counts (e.g. `() => app.kontrol.stats()`); the kiteMetrics plugin does this when Kontrol runs in the app. */
  watchKontrol(counts: () => KontrolCounts): this {
    if (this.kontrolCounts !== null) throw new Error('kiteMetrics already watches a Kontrol')
    this.kontrolCounts = counts
    const p = this.prefix
    const registers = [this.registry]
    const read = (): KontrolCounts => counts()
    new Gauge({
      name: `${p}kontrol_kites_registered`,
      help: 'Kites registered and alive on this Kontrol',
      registers,
      collect() {
        this.set(read().kitesRegistered)
      },
    })
    const total = (name: string, help: string, pick: (c: KontrolCounts) => number): void => {
      new Counter({
        name: `${p}kontrol_${name}_total`,
        help,
        registers,
        collect() {
          this.reset()
          this.inc(pick(read()))
        },
      })
    }
    total('registrations', 'Successful kite registrations (kite method and HTTP)', (c) => c.registrations)
    total('getkites', 'getKites calls', (c) => c.getKites)
    total('tokens_signed', 'Tokens signed (cached tokens not counted)', (c) => c.tokensSigned)
    total('heartbeats_missed', 'Kites forgotten because their heartbeats stopped', (c) => c.heartbeatsMissed)
    return this
  }

  serverCall(info: ServerCallInfo): CallObservation {
    return new Timing(this.server, this.server.of(info.method), info.method)
  }

  clientCall(method: string): ClientCallObservation {
    return new Timing(this.client, this.client.of(method), method)
  }

  /** The metrics in Prometheus text format. */
  metrics(): Promise<string> {
    return this.registry.metrics()
  }
}
