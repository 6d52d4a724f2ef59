import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { unref } from '../platform.js'
import { KiteError, fromWire, kiteError, toWire } from '../errors.js'
import { ProtocolError, parseMessage } from '../dnode/message.js'
import type { DnodeLimits } from '../dnode/limits.js'
import { findFunctions, functionPlaceholder, installAt, isResponseCallbackPath, type FoundFunction } from '../dnode/scrub.js'
import { parseResponse, type KiteAuth } from '../protocol/envelope.js'
import type { KiteIdentity } from '../protocol/kite.js'
import type { RemoteWarnings } from './remote-warnings.js'
import type { ClientCallObservation, KiteObserver, TraceCarrier } from '../observe/observer.js'

/** What a transport gives a connection: a way to send one dnode message and to close. */
export interface ConnectionSink {
  send(text: string): void
  close(code: number, reason: string): void
  /** Bytes written but not yet sent to the peer (for metrics); transports that cannot tell leave it out. */
  readonly bufferedBytes?: number
}

/** A method call that arrived, its arguments already carrying callable callbacks. */
export interface IncomingCall {
  method: string
  args: unknown[]
  /** The caller's response callback id, or null when it sent none. */
  responseId: number | null
}

/** Whoever serves calls arriving on a connection (kite-server's dispatcher, or a client's methods). */
export interface CallHandler {
  handleCall(conn: KiteConnection, call: IncomingCall): void
}

/** Options of one call made on a connection. */
export interface TellOptions {
  /** Milliseconds to wait for the response; 0 waits until the connection drops. */
  timeout?: number
}

export interface ConnectionOptions {
  sink: ConnectionSink
  handler: CallHandler
  limits: DnodeLimits
  log: Logger
  /** The identity sent in the envelope of every call made from this side. */
  localKite: KiteIdentity
  /** Credentials sent with every call made from this side. */
  auth?: KiteAuth | null
  /** Default timeout of calls made from this side, in ms (0 = none). */
  defaultTimeout?: number
  remoteAddress?: string
  /** Name of the transport, for logs and `KiteRequest.connection.transport`. */
  transport: string
  /** Most functions this side may have handed the peer at once (default MAX_LOCAL_CALLBACKS). */
  maxCallbacksHeld?: number
  /** Rate limit for warnings caused by what the peer sends; without it every such warning is logged. */
  warnings?: RemoteWarnings
  /** Watches calls made from this side (metrics, tracing); none by default. */
  observer?: KiteObserver | null
}

interface PendingCall {
  method: string
  resolve: (value: unknown) => void
  reject: (err: KiteError) => void
  /** A precise timer, for short timeouts. */
  timer: NodeJS.Timeout | null
  /** When a long timeout expires (ms since the epoch), checked by the sweep; 0 for none. */
  deadline: number
  timeout: number
}

/**
 * Timeouts from this long up are checked by one sweep per connection every
 * SWEEP_MS instead of a timer per call: a Node timer costs about as much as
 * the rest of a call, and a default 15 s timeout does not need millisecond
 * precision. Shorter timeouts keep their own timer.
 */
const SWEEP_FROM_MS = 2000
const SWEEP_MS = 250

type LocalCallback = (...args: unknown[]) => unknown

const noop = (): void => {}

/**
 * Most functions one side may have handed its peer on one connection. They
 * stay callable until the connection closes (peers never say when they are
 * done with one), so this bounds what a loop of calls with callbacks can hold.
 */
export const MAX_LOCAL_CALLBACKS = 100_000

/** True when no element can hold a function, so scrubbing can be skipped. */
function allPrimitive(args: unknown[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a !== null && (typeof a === 'object' || typeof a === 'function')) return false
  }
  return true
}

/**
 * One kite connection, either side: parses what arrives, routes callback
 * invocations and responses, hands method calls to its CallHandler, and makes
 * calls to the peer. Transport-free: a transport feeds `receive()` and calls
 * `closed()`; the connection writes through its sink.
 *
 * Events: `close` (once, after pending calls have failed), `tokenExpired`.
 */
export class KiteConnection extends EventEmitter {
  readonly log: Logger
  readonly transport: string
  readonly remoteAddress: string
  /** The peer's identity: fixed by its first call, with the username replaced once authenticated. */
  remoteKite: KiteIdentity | null = null
  /** Calls from the peer currently being handled (for the concurrency limit). */
  inFlight = 0
  /** True once a call from the peer passed an authenticator. */
  authenticated = false
  /** Calls from the peer answered without an error (the idle sweep watches it change). */
  successCount = 0
  /** Failed authentications in the current window, and when that window began. */
  authFailures = 0
  authWindowStart = 0
  /** How the connection ended (close code and reason), once it has. */
  closeCode: number | null = null
  closeReason = ''
  /** Watches calls made from this side; null when nothing watches. */
  observer: KiteObserver | null
  private readonly sink: ConnectionSink
  private readonly handler: CallHandler
  private readonly limits: DnodeLimits
  private readonly defaultTimeout: number
  private readonly maxCallbacksHeld: number
  private readonly warnings: RemoteWarnings | null
  private readonly pending = new Map<number, PendingCall>()
  private readonly callbacks = new Map<number, LocalCallback>()
  private nextId = 0
  private isClosed = false
  private envelopeHead: string
  private localKiteValue: KiteIdentity
  private authValue: KiteAuth | null
  private heartbeat: NodeJS.Timeout | null = null
  private sweep: NodeJS.Timeout | null = null
  private abort: AbortController | null = null

  constructor(o: ConnectionOptions) {
    super()
    this.sink = o.sink
    this.handler = o.handler
    this.limits = o.limits
    this.log = o.log
    this.transport = o.transport
    this.remoteAddress = o.remoteAddress ?? ''
    this.defaultTimeout = o.defaultTimeout ?? 0
    this.maxCallbacksHeld = o.maxCallbacksHeld ?? MAX_LOCAL_CALLBACKS
    this.warnings = o.warnings ?? null
    this.localKiteValue = o.localKite
    this.authValue = o.auth ?? null
    this.observer = o.observer ?? null
    this.envelopeHead = this.buildEnvelopeHead()
  }

  get closed(): boolean {
    return this.isClosed
  }

  /**
   * Logs a warning caused by what the peer sent: at most one warn line per
   * peer address per interval when the kite rate-limits them (the rest at debug).
   */
  warnRemote(fields: Record<string, unknown>, msg: string): void {
    if (this.warnings === null) this.log.warn(fields, msg)
    else this.warnings.warn(this.log, this.remoteAddress, fields, msg)
  }

  /** Aborted when the connection closes; handlers use it to stop long work. */
  get signal(): AbortSignal {
    this.abort ??= new AbortController()
    if (this.isClosed && !this.abort.signal.aborted) this.abort.abort()
    return this.abort.signal
  }

  /** Credentials sent with calls from this side; changing them needs no reconnect. */
  get auth(): KiteAuth | null {
    return this.authValue
  }

  set auth(auth: KiteAuth | null) {
    this.authValue = auth
    this.envelopeHead = this.buildEnvelopeHead()
  }

  private buildEnvelopeHead(): string {
    return `{"kite":${JSON.stringify(this.localKiteValue)},"authentication":${JSON.stringify(this.authValue)},"responseCallback":"[Function]","withArgs":`
  }

  /** Feeds one dnode message (JSON text) that arrived from the peer. */
  receive(text: string): void {
    if (this.isClosed) return
    let msg
    try {
      msg = parseMessage(text, this.limits)
    } catch (err) {
      const e = err as ProtocolError
      this.warnRemote({ reason: e.message, closeCode: e.closeCode }, 'closing connection: bad message')
      this.close(e.closeCode, e.message)
      return
    }
    if (typeof msg.method === 'number') {
      this.receiveCallback(msg.method, msg.arguments, msg.callbacks)
      return
    }
    if (msg.method === 'methods') return
    if (msg.method === 'cull') {
      for (const id of msg.arguments) if (typeof id === 'number') this.callbacks.delete(id)
      return
    }
    const responseId = this.unscrub(msg.arguments, msg.callbacks)
    this.handler.handleCall(this, { method: msg.method, args: msg.arguments, responseId })
  }

  /** Replaces callback placeholders by functions that call the peer; returns the response callback id. */
  private unscrub(args: unknown[], callbacks: Record<string, readonly (string | number)[]>): number | null {
    let responseId: number | null = null
    for (const key in callbacks) {
      const path = callbacks[key]!
      const id = Number(key)
      if (isResponseCallbackPath(path)) responseId = id
      else installAt(args, path, (...cbArgs: unknown[]) => this.invokeRemote(id, cbArgs))
    }
    return responseId
  }

  private receiveCallback(id: number, args: unknown[], callbacks: Record<string, readonly (string | number)[]>): void {
    const call = this.pending.get(id)
    if (call !== undefined) {
      this.pending.delete(id)
      if (call.timer !== null) clearTimeout(call.timer)
      this.unscrub(args, callbacks)
      this.settle(call, args)
      return
    }
    const fn = this.callbacks.get(id)
    if (fn === undefined) {
      this.log.debug({ callbackId: id }, 'dropped a call to an unknown callback id')
      return
    }
    this.unscrub(args, callbacks)
    try {
      const out = fn(...args)
      if (out instanceof Promise) out.catch((err: unknown) => this.log.warn({ err }, 'callback failed'))
    } catch (err) {
      this.log.warn({ err }, 'callback failed')
    }
  }

  private settle(call: PendingCall, args: unknown[]): void {
    const response = parseResponse(args)
    if (response === null) {
      call.reject(kiteError('KITE_ERR_RESPONSE_INVALID'))
      return
    }
    if (response.error === null) {
      call.resolve(response.result)
      return
    }
    const err = fromWire(response.error)
    if (err.type === 'authenticationError' && err.message.includes('token is expired')) this.emit('tokenExpired', err)
    call.reject(err)
  }

  /**
   * Calls `method` on the peer with `args` (functions among them become
   * callbacks the peer can call) and resolves with its result.
   */
  tell(method: string, args: unknown[] = [], options: TellOptions = {}): Promise<unknown> {
    if (this.isClosed) return Promise.reject(kiteError('KITE_ERR_SEND_CLOSED'))
    if (this.observer !== null) {
      const obs = this.observer.clientCall(method, this)
      if (obs !== null) return this.observedTell(method, args, options, obs)
    }
    return new Promise((resolve, reject) => this.send(method, args, options, resolve, reject, null))
  }

  private observedTell(method: string, args: unknown[], options: TellOptions, obs: ClientCallObservation): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const done = (value: unknown): void => {
        obs.end(null)
        resolve(value)
      }
      const failed = (err: KiteError): void => {
        obs.end(err)
        reject(err)
      }
      this.send(method, args, options, done, failed, obs.traceContext)
    })
  }

  private send(method: string, args: unknown[], options: TellOptions, resolve: (value: unknown) => void, reject: (err: KiteError) => void, trace: TraceCarrier | null): void {
    const id = this.nextId++
    const timeout = options.timeout ?? this.defaultTimeout
    const call: PendingCall = { method, resolve, reject, timer: null, deadline: 0, timeout }
    let text: string
    try {
      text = this.encodeCall(method, id, args, trace)
    } catch (err) {
      reject(err instanceof KiteError ? err : kiteError('KITE_ERR_SEND_FAILED', (err as Error).message))
      return
    }
    this.pending.set(id, call)
    if (timeout >= SWEEP_FROM_MS) {
      call.deadline = Date.now() + timeout
      this.startSweep()
    } else if (timeout > 0) {
      call.timer = setTimeout(() => {
        this.pending.delete(id)
        reject(kiteError('KITE_ERR_CALL_TIMEOUT', method, timeout))
      }, timeout)
    }
    this.write(text, () => {
      this.pending.delete(id)
      if (call.timer !== null) clearTimeout(call.timer)
    }, reject)
  }

  private startSweep(): void {
    if (this.sweep !== null) return
    this.sweep = setInterval(() => {
      const now = Date.now()
      let waiting = false
      for (const [id, call] of this.pending) {
        if (call.deadline === 0) continue
        if (call.deadline <= now) {
          this.pending.delete(id)
          call.reject(kiteError('KITE_ERR_CALL_TIMEOUT', call.method, call.timeout))
        } else waiting = true
      }
      if (!waiting) this.stopSweep()
    }, SWEEP_MS)
    unref(this.sweep)
  }

  private stopSweep(): void {
    if (this.sweep !== null) clearInterval(this.sweep)
    this.sweep = null
  }

  private encodeCall(method: string, responseId: number, args: unknown[], trace: TraceCarrier | null): string {
    // The trace context rides in an extra envelope field, which Go kites and kite.js ignore.
    const head = trace === null ? this.envelopeHead : `{"traceContext":${JSON.stringify(trace)},${this.envelopeHead.slice(1)}`
    const found: FoundFunction[] = []
    if (!allPrimitive(args)) findFunctions(args, [], found)
    if (found.length === 0) {
      return `{"method":${JSON.stringify(method)},"arguments":[${head}${JSON.stringify(args)}}],"callbacks":{"${responseId}":[0,"responseCallback"]}}`
    }
    const callbacks: Record<string, unknown[]> = { [responseId]: [0, 'responseCallback'] }
    return this.withCallbacks(found, callbacks, (f) => [0, 'withArgs', ...f.path], () => `{"method":${JSON.stringify(method)},"arguments":[${head}${JSON.stringify(args, functionPlaceholder)}}],"callbacks":${JSON.stringify(callbacks)}}`)
  }

  /** Registers the functions found, then encodes; when encoding fails, none of them stays registered. */
  private withCallbacks(found: FoundFunction[], callbacks: Record<string, unknown[]>, pathOf: (f: FoundFunction) => unknown[], encode: () => string): string {
    const ids: number[] = []
    try {
      for (const f of found) {
        const id = this.addCallback(f.fn)
        ids.push(id)
        callbacks[id] = pathOf(f)
      }
      return encode()
    } catch (err) {
      for (const id of ids) this.callbacks.delete(id)
      throw err
    }
  }

  private addCallback(fn: LocalCallback): number {
    if (this.callbacks.size >= this.maxCallbacksHeld) throw kiteError('KITE_ERR_CALLBACK_LIMIT', this.maxCallbacksHeld)
    const id = this.nextId++
    this.callbacks.set(id, fn)
    return id
  }

  /** Answers a call through the caller's response callback, always in the one-object form. */
  respond(responseId: number, error: unknown, result: unknown, requestId = ''): void {
    if (this.isClosed) return
    if (error === null || error === undefined) {
      const encoded = this.encodeResult(responseId, result)
      if (typeof encoded === 'string') {
        this.write(encoded)
        return
      }
      error = encoded
    }
    this.write(`{"method":${responseId},"arguments":[{"error":${JSON.stringify(toWire(error, requestId))},"result":null}],"callbacks":{}}`)
  }

  /** The success answer, or the error to send instead when the result cannot be encoded (a BigInt, a cycle). */
  private encodeResult(responseId: number, result: unknown): string | KiteError {
    try {
      // The common case, a plain value, has nothing to scrub.
      if (result === undefined || result === null || typeof result !== 'object') {
        return `{"method":${responseId},"arguments":[{"error":null,"result":${JSON.stringify(result) ?? 'null'}}],"callbacks":{}}`
      }
      return this.encodeInvocation(responseId, [{ error: null, result }])
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot encode a result')
      return kiteError('KITE_ERR_HANDLER_FAILED', `cannot encode result: ${(err as Error).message}`)
    }
  }

  /** Calls a callback the peer sent us. Returns false when it could not be sent. */
  invokeRemote(id: number, args: unknown[]): boolean {
    if (this.isClosed) return false
    let text: string
    try {
      text = this.encodeInvocation(id, args)
    } catch (err) {
      this.log.warn({ err: (err as Error).message, callbackId: id }, 'cannot encode callback arguments')
      return false
    }
    return this.write(text)
  }

  /** A call of the peer's callback `id`; functions among `args` become our callbacks. Throws when `args` cannot be encoded. */
  private encodeInvocation(id: number, args: unknown[]): string {
    const found: FoundFunction[] = []
    if (!allPrimitive(args)) findFunctions(args, [], found)
    if (found.length === 0) return `{"method":${id},"arguments":${JSON.stringify(args)},"callbacks":{}}`
    const callbacks: Record<string, unknown[]> = {}
    return this.withCallbacks(found, callbacks, (f) => f.path, () => `{"method":${id},"arguments":${JSON.stringify(args, functionPlaceholder)},"callbacks":${JSON.stringify(callbacks)}}`)
  }

  private write(text: string, onFail: () => void = noop, reject?: (err: KiteError) => void): boolean {
    try {
      this.sink.send(text)
      return true
    } catch (err) {
      onFail()
      const e = kiteError('KITE_ERR_SEND_FAILED', (err as Error).message)
      if (reject) reject(e)
      else this.log.warn({ err }, 'send failed')
      return false
    }
  }

  /** Makes `ping` run now and every `intervalMs` until replaced or the connection closes. */
  setHeartbeat(intervalMs: number, ping: () => void): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat)
    if (this.isClosed) return
    ping()
    this.heartbeat = setInterval(ping, intervalMs)
    unref(this.heartbeat)
  }

  /** Closes the connection from this side. */
  close(code = 1000, reason = 'normal closure'): void {
    if (this.isClosed) return
    this.closeCode = code
    this.closeReason = reason
    try {
      this.sink.close(code, reason)
    } finally {
      this.transportClosed()
    }
  }

  /** Called by the transport when the connection is gone: fails every pending call with `disconnect`. */
  transportClosed(code?: number, reason?: string): void {
    if (this.isClosed) return
    this.isClosed = true
    if (this.closeCode === null && code !== undefined) {
      this.closeCode = code
      this.closeReason = reason ?? ''
    }
    if (this.heartbeat !== null) clearInterval(this.heartbeat)
    this.heartbeat = null
    this.stopSweep()
    this.log.debug({ callbacksHeld: this.callbacks.size, pendingCalls: this.pending.size, code: this.closeCode }, 'connection closed')
    const pending = [...this.pending.values()]
    this.pending.clear()
    this.callbacks.clear()
    for (const call of pending) {
      if (call.timer !== null) clearTimeout(call.timer)
      call.reject(kiteError('KITE_ERR_DISCONNECTED'))
    }
    this.abort?.abort()
    this.emit('close')
  }

  /** Number of calls made from this side still waiting for an answer. */
  get pendingCalls(): number {
    return this.pending.size
  }

  /** Bytes queued for the peer and not yet sent (WebSocket buffer, XHR outbox); 0 when the transport cannot tell. */
  get bufferedBytes(): number {
    return this.sink.bufferedBytes ?? 0
  }

  /** Number of local callbacks the peer may still call. */
  get callbackCount(): number {
    return this.callbacks.size
  }
}
