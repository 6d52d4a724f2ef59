import {
  ProxyTracerProvider,
  SpanKind,
  SpanStatusCode,
  context,
  createTraceState,
  isSpanContextValid,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api'
import type { KiteConnection } from '../connection/connection.js'
import { errorType, type CallObservation, type ClientCallObservation, type KiteObserver, type ServerCallInfo, type TraceCarrier } from './observer.js'

/** Options of `kiteTracer`. */
export interface KiteTracingOptions {
  /** The tracer spans are made with. Default: `tracerProvider`'s, else the global one's, named `fastify-kite`. */
  tracer?: Tracer
  /** Where the tracer comes from when `tracer` is not given. Default: the global provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const ZERO_TRACE = '00000000000000000000000000000000'
const ZERO_SPAN = '0000000000000000'

/** Reads a W3C `traceparent` (and `tracestate`) into a remote span context; null when invalid. */
export function parseTraceCarrier(carrier: TraceCarrier): SpanContext | null {
  const m = TRACEPARENT.exec(carrier.traceparent)
  if (m === null) return null
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined]
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null
  const sc: SpanContext = { traceId, spanId, traceFlags: parseInt(flags, 16) & 1, isRemote: true }
  if (carrier.tracestate !== undefined && carrier.tracestate !== '') sc.traceState = createTraceState(carrier.tracestate)
  return sc
}

/** The W3C form of a span context; null when it is not valid. */
export function formatTraceCarrier(sc: SpanContext): TraceCarrier | null {
  if (!isSpanContextValid(sc)) return null
  const traceparent = `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & 1).toString(16)}`
  const state = sc.traceState?.serialize()
  return state === undefined || state === '' ? { traceparent } : { traceparent, tracestate: state }
}

function endSpan(span: Span, error: unknown): void {
  if (error === null || error === undefined) span.setStatus({ code: SpanStatusCode.OK })
  else {
    const type = errorType(error)
    span.setAttribute('error.type', type)
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
  }
  span.end()
}

class ServerSpan implements CallObservation {
  constructor(
    private readonly span: Span,
    private readonly ctx: Context,
  ) {}

  run<T>(fn: () => T): T {
    return context.with(this.ctx, fn)
  }

  end(error: unknown): void {
    endSpan(this.span, error)
  }
}

class ClientSpan implements ClientCallObservation {
  constructor(
    private readonly span: Span,
    readonly traceContext: TraceCarrier | null,
  ) {}

  end(error: unknown): void {
    endSpan(this.span, error)
  }
}

/** Passes a caller's trace context on through a kite that records nothing (no SDK). */
class PassOn implements CallObservation, ClientCallObservation {
  constructor(
    private readonly ctx: Context | null,
    readonly traceContext: TraceCarrier | null,
  ) {}

  run<T>(fn: () => T): T {
    return this.ctx === null ? fn() : context.with(this.ctx, fn)
  }

  end(): void {}
}

const NAME = 'fastify-kite'

class TracingObserver implements KiteObserver {
  private tracer: Tracer | null

  constructor(
    tracer: Tracer | null,
    private readonly provider: TracerProvider,
  ) {
    this.tracer = tracer
  }

  /**
   * The tracer, or null while the global provider has no SDK behind it: then
   * nothing would be recorded, and a call costs a property read. Once an SDK
   * is registered its tracer is kept.
   */
  private resolve(): Tracer | null {
    if (this.tracer !== null) return this.tracer
    const provider = this.provider
    if (provider instanceof ProxyTracerProvider) {
      const delegate = provider.getDelegateTracer(NAME)
      if (delegate === undefined) return null
      return (this.tracer = delegate)
    }
    return (this.tracer = provider.getTracer(NAME))
  }

  serverCall(info: ServerCallInfo): CallObservation | null {
    const tracer = this.resolve()
    // No SDK and no trace to pass on: nothing to watch (null costs the call nothing more).
    if (tracer === null && info.traceContext === null) return null
    let parent = context.active()
    if (info.traceContext !== null) {
      const remote = parseTraceCarrier(info.traceContext)
      if (remote !== null) parent = trace.setSpanContext(parent, remote)
      else if (tracer === null) return null
    }
    if (tracer === null) return new PassOn(parent, null)
    const span = tracer.startSpan(`kite ${info.method}`, { kind: SpanKind.SERVER }, parent)
    if (!span.isRecording()) {
      // Not sampled: nothing to record. The context still runs the handler when there is
      // one to pass on, so traces continue through this kite.
      return isSpanContextValid(span.spanContext()) ? new ServerSpan(span, trace.setSpan(parent, span)) : null
    }
    // Attributes are set after the span starts, so that an unrecorded call builds none.
    const caller = info.caller
    span.setAttributes({
      'rpc.system': 'kite',
      'rpc.method': info.method,
      'kite.caller.username': caller.username,
      'kite.caller.name': caller.name,
      'kite.caller.id': caller.id,
      'kite.transport': info.connection.transport,
    })
    if (info.connection.remoteAddress !== '') span.setAttribute('network.peer.address', info.connection.remoteAddress)
    return new ServerSpan(span, trace.setSpan(parent, span))
  }

  clientCall(method: string, connection: KiteConnection): ClientCallObservation | null {
    const tracer = this.resolve()
    if (tracer === null) {
      // No SDK: pass on the trace context of the call being handled, if any.
      const active = trace.getSpanContext(context.active())
      const carrier = active === undefined ? null : formatTraceCarrier(active)
      return carrier === null ? null : new PassOn(null, carrier)
    }
    const span = tracer.startSpan(`kite ${method}`, { kind: SpanKind.CLIENT })
    const traceContext = formatTraceCarrier(span.spanContext())
    if (!span.isRecording()) return traceContext === null ? null : new ClientSpan(span, traceContext)
    const attributes: Attributes = { 'rpc.system': 'kite', 'rpc.method': method, 'kite.transport': connection.transport }
    const remote = connection.remoteKite
    if (remote !== null && remote.name !== '') attributes['kite.peer.name'] = remote.name
    if (connection.remoteAddress !== '') attributes['server.address'] = connection.remoteAddress
    span.setAttributes(attributes)
    return new ClientSpan(span, traceContext)
  }
}

/**
 * An observer that makes OpenTelemetry spans: a SERVER span per call to this
 * kite's methods (a child of the caller's span when the caller sent W3C trace
 * context; handlers run inside it, so calls they make continue the trace) and a
 * CLIENT span per call made, whose context travels in the envelope's
 * `traceContext` field. Uses only `@opentelemetry/api`: spans are recorded
 * once the app registers an SDK; until then the tracer is a no-op.
 */
export function kiteTracer(options: KiteTracingOptions = {}): KiteObserver {
  return new TracingObserver(options.tracer ?? null, options.tracerProvider ?? trace.getTracerProvider())
}
