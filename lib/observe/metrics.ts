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

/** One method's counts, kept in plain numbers on the hot path and read by prom-client at scrape time. */
class MethodRecord {
  calls = 0
  sum = 0
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly buckets: Float64Array
  readonly errors = new Map<string, number>()

  constructor(buckets: number) {
    this.buckets = new Float64Array(buckets + 1)
  }
}

/**
 * Calls, errors and durations per method. prom-client's own `inc`/`observe`
 * hash the labels and validate them on every call (about 2 µs each, measured
 * by `npm run bench`); here a call costs a map lookup and a few additions,
 * and the prom-client metrics read these records when scraped.
 */
class CallStats {
  readonly byMethod = new Map<string, MethodRecord>()

  constructor(readonly bounds: readonly number[]) {}

  of(method: string): MethodRecord {
    let r = this.byMethod.get(method)
    if (r === undefined) {
      r = new MethodRecord(this.bounds.length)
      this.byMethod.set(method, r)
    }
    return r
  }

  ended(r: MethodRecord, seconds: number, error: unknown): void {
    r.calls++
    r.sum += seconds
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && seconds > bounds[i]!) i++
    r.buckets[i]!++
    if (error !== null && error !== undefined) {
      const type = errorType(error)
      r.errors.set(type, (r.errors.get(type) ?? 0) + 1)
    }
  }
}

type HistogramValue = { labels: Record<string, string | number>; value: number; metricName: string }

/** A prom-client Histogram whose values come from CallStats records. */
class RecordHistogram extends Histogram<'method'> {
  private readonly stats: CallStats
  private readonly metricName: string
  private readonly helpText: string

  constructor(config: { name: string; help: string; registers: Registry[]; stats: CallStats }) {
    super({ name: config.name, help: config.help, labelNames: ['method'], buckets: [...config.stats.bounds], registers: config.registers })
    this.stats = config.stats
    this.metricName = config.name
    this.helpText = config.help
  }

  private snapshot(): { name: string; help: string; type: 'histogram'; values: HistogramValue[]; aggregator: 'sum' } {
    const name = this.metricName
    const values: HistogramValue[] = []
    for (const [method, r] of this.stats.byMethod) {
      let acc = 0
      this.stats.bounds.forEach((le, i) => {
        acc += r.buckets[i]!
        values.push({ labels: { le, method }, value: acc, metricName: `${name}_bucket` })
      })
      values.push({ labels: { le: '+Inf', method }, value: r.calls, metricName: `${name}_bucket` })
      values.push({ labels: { method }, value: r.sum, metricName: `${name}_sum` })
      values.push({ labels: { method }, value: r.calls, metricName: `${name}_count` })
    }
    return { name, help: this.helpText, type: 'histogram', values, aggregator: 'sum' }
  }

  override async get(): Promise<ReturnType<Histogram<'method'>['get']> extends Promise<infer T> ? T : never> {
    return this.snapshot() as never
  }

  /** What the registry formats (prom-client calls this in preference to `get`). */
  async getForPromString(): Promise<ReturnType<RecordHistogram['snapshot']>> {
    return this.snapshot()
  }
}

/** The three metrics of one side (server or client) over one CallStats. */
function callMetrics(prefix: string, side: 'server' | 'client', registers: Registry[], bounds: readonly number[]): CallStats {
  const stats = new CallStats(bounds)
  const what = side === 'server' ? 'Calls handled by this kite, by method' : 'Calls made to other kites, by remote method'
  new Counter({
    name: `${prefix}calls_total`,
    help: what,
    labelNames: ['method'],
    registers,
    collect() {
      this.reset()
      for (const [method, r] of stats.byMethod) this.inc({ method }, r.calls)
    },
  })
  new Counter({
    name: `${prefix}call_errors_total`,
    help: `${side === 'server' ? 'Calls this kite answered with an error' : 'Calls to other kites that failed'}, by method and kite error type`,
    labelNames: ['method', 'type'],
    registers,
    collect() {
      this.reset()
      for (const [method, r] of stats.byMethod) for (const [type, n] of r.errors) this.inc({ method, type }, n)
    },
  })
  new RecordHistogram({
    name: `${prefix}call_duration_seconds`,
    help: side === 'server' ? 'Time from a call arriving to its answer, by method' : 'Time from sending a call to its answer, by remote method',
    registers,
    stats,
  })
  return stats
}

class Timing implements CallObservation, ClientCallObservation {
  readonly traceContext = null
  private readonly start = performance.now()

  constructor(
    private readonly stats: CallStats,
    private readonly record: MethodRecord,
  ) {}

  /** Metrics keep no context: the call runs as it would unwatched (the dispatcher sees `passThrough` and makes no closure). */
  declare readonly run: <T>(fn: () => T) => T

  end(error: unknown): void {
    this.stats.ended(this.record, (performance.now() - this.start) / 1000, error)
  }
}

// On the prototype: a Timing is made per call, and this spares it a field.
;(Timing.prototype as { run: unknown }).run = passThrough

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
  private readonly server: CallStats
  private readonly client: CallStats
  private readonly sources: ConnectionSource[] = []
  private kontrolCounts: (() => KontrolCounts) | null = null

  constructor(options: KiteMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry()
    this.prefix = options.prefix ?? 'kite_'
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(this.prefix)) throw new TypeError(`kiteMetrics prefix ${this.prefix} is not a valid metric name prefix`)
    const buckets = [...(options.buckets ?? DEFAULT_BUCKETS)].sort((a, b) => a - b)
    if (buckets.length === 0 || buckets.some((b) => !Number.isFinite(b) || b <= 0)) throw new TypeError('kiteMetrics buckets must be positive numbers of seconds')
    const registers = [this.registry]
    const p = this.prefix
    this.server = callMetrics(p, 'server', registers, buckets)
    this.client = callMetrics(`${p}client_`, 'client', registers, buckets)
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
    /** A gauge read at scrape time: `field` added up over every connection. */
    const sumOverConnections = (name: string, help: string, field: (conn: KiteConnection) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          let n = 0
          for (const s of sources) for (const conn of s.connections) n += field(conn)
          this.set(n)
        },
      })
    }
    sumOverConnections(`${p}bytes_queued`, 'Bytes written to peers and not yet sent (slow readers), over all connections', (conn) => conn.bufferedBytes)
    sumOverConnections(`${p}callbacks_held`, 'Callbacks peers may still call (held until their connection closes)', (conn) => conn.callbackCount)
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
    return new Timing(this.server, this.server.of(info.method))
  }

  clientCall(method: string): ClientCallObservation {
    return new Timing(this.client, this.client.of(method))
  }

  /** The metrics in Prometheus text format. */
  metrics(): Promise<string> {
    return this.registry.metrics()
  }
}
