import type { KiteConnection } from '../connection/connection.js'
import type { KiteIdentity } from '../protocol/kite.js'
import { KiteError } from '../errors.js'

/** The wire error type a call failed with (`genericError` for anything that is not a KiteError). */
export function errorType(err: unknown): string {
  return err instanceof KiteError ? err.type : 'genericError'
}

/**
 * W3C trace context as it travels in the call envelope's extra `traceContext`
 * field (`{"kite":…,"authentication":…,"traceContext":{"traceparent":…},…}`).
 * Go kites and kite.js ignore the field.
 */
export interface TraceCarrier {
  traceparent: string
  tracestate?: string
}

/** A call that arrived at one of this kite's methods. */
export interface ServerCallInfo {
  readonly method: string
  /** The caller's identity as the connection knows it (claimed until authenticated). */
  readonly caller: KiteIdentity
  readonly connection: KiteConnection
  /** The trace context the caller sent, or null. */
  readonly traceContext: TraceCarrier | null
}

/** What an observer keeps for one call it watches. */
export interface CallObservation {
  /** Runs the rest of the call (authentication, throttle, handlers) inside this observation's context. */
  run<T>(fn: () => T): T
  /** The call ended: `error` is null on success, else what it failed with. */
  end(error: unknown): void
}

/** What an observer keeps for one call made to a peer. */
export interface ClientCallObservation {
  /** The trace context to send with the call, or null. */
  readonly traceContext: TraceCarrier | null
  /** The call ended: `error` is null on success, else what it failed with. */
  end(error: unknown): void
}

/**
 * Watches kite calls: implemented by `kiteMetrics` (prom-client) and
 * `kiteTracing` (OpenTelemetry). The call pipeline and the connections call
 * an observer only when one is installed, so watching costs nothing when off.
 */
export interface KiteObserver {
  /** A call arrived at a known method of this kite (or of a KiteClient's own methods). */
  serverCall(info: ServerCallInfo): CallObservation | null
  /** A call is about to be sent to a peer (KiteClient, or `conn.tell` from a server). */
  clientCall(method: string, connection: KiteConnection): ClientCallObservation | null
}

const passThrough = <T>(fn: () => T): T => fn()

function runBoth<T>(this: BothServer, fn: () => T): T {
  return this.a.run(() => this.b.run(fn))
}

class BothServer implements CallObservation {
  /** `passThrough` when neither enters a context (metrics with a no-op tracer), so the dispatcher makes no closure. */
  readonly run: <T>(fn: () => T) => T

  constructor(
    readonly a: CallObservation,
    readonly b: CallObservation,
  ) {
    this.run = a.run === passThrough && b.run === passThrough ? passThrough : runBoth
  }

  end(error: unknown): void {
    this.b.end(error)
    this.a.end(error)
  }
}

class BothClient implements ClientCallObservation {
  readonly traceContext: TraceCarrier | null
  constructor(
    private readonly a: ClientCallObservation,
    private readonly b: ClientCallObservation,
  ) {
    this.traceContext = a.traceContext ?? b.traceContext
  }

  end(error: unknown): void {
    this.b.end(error)
    this.a.end(error)
  }
}

/** Two observers as one: the first one's context is outermost. */
class Pair implements KiteObserver {
  constructor(
    private readonly a: KiteObserver,
    private readonly b: KiteObserver,
  ) {}

  serverCall(info: ServerCallInfo): CallObservation | null {
    const a = this.a.serverCall(info)
    const b = this.b.serverCall(info)
    if (a === null) return b
    if (b === null) return a
    return new BothServer(a, b)
  }

  clientCall(method: string, connection: KiteConnection): ClientCallObservation | null {
    const a = this.a.clientCall(method, connection)
    const b = this.b.clientCall(method, connection)
    if (a === null) return b
    if (b === null) return a
    return new BothClient(a, b)
  }
}

/** One observer watching for all of `observers`, or null for none. */
export function combineObservers(observers: readonly KiteObserver[]): KiteObserver | null {
  if (observers.length === 0) return null
  let out = observers[0]!
  for (let i = 1; i < observers.length; i++) out = new Pair(out, observers[i]!)
  return out
}

/** A CallObservation whose `run` only calls the function (for observers with no context). */
export { passThrough }

/** Reads the envelope's `traceContext` field, or null when missing or malformed. */
export function readTraceCarrier(envelope: unknown): TraceCarrier | null {
  if (envelope === null || typeof envelope !== 'object') return null
  const t = (envelope as { traceContext?: unknown }).traceContext
  if (t === null || typeof t !== 'object' || Array.isArray(t)) return null
  const { traceparent, tracestate } = t as Record<string, unknown>
  // W3C: traceparent is 55 characters for version 00; tracestate at most 32 members (~512 chars).
  if (typeof traceparent !== 'string' || traceparent.length > 128) return null
  if (tracestate !== undefined && (typeof tracestate !== 'string' || tracestate.length > 1024)) return { traceparent }
  return tracestate === undefined ? { traceparent } : { traceparent, tracestate }
}
