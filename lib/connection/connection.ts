import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { KiteError, fromWire, isTokenExpired, kiteError, toWire } from '../errors.js'
import { ProtocolError, parseMessage } from '../dnode/message.js'
import type { DnodeLimits } from '../dnode/limits.js'
import { installAt, isResponseCallbackPath } from '../dnode/scrub.js'
import { encodeInvocation } from '../dnode/encode.js'
import { encodeCall, encodeErrorResponse, encodeResultResponse, encodeSerializedResponse, envelopeHead, parseResponse, withTraceContext, type KiteAuth } from '../protocol/envelope.js'
import { PendingCall, PendingCalls, systemTimers, type Timers } from './pending.js'
import type { KiteIdentity } from '../protocol/kite.js'
import type { RemoteWarnings } from './remote-warnings.js'
import type { KiteObserver, TraceCarrier } from '../observe/observer.js'

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
  /** Timers of call timeouts and the heartbeat (tests give fake ones); default Node's. */
  timers?: Timers
}

type LocalCallback = (...args: unknown[]) => unknown

/**
 * Most functions one side may have handed its peer on one connection. They
 * stay callable until the connection closes (peers never say when they are
 * done with one), so this bounds what a loop of calls with callbacks can hold.
 */
export const MAX_LOCAL_CALLBACKS = 100_000

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
  /**
   * Remembered credentials, on a kite's side: the kite.key or token the peer may refer to with
   * `{ type, remembered: true }` on this connection. Set by kite-auth when a key passed with
   * `remember` asked; the dispatcher puts its key into every call that refers to it.
   */
  rememberedAuth: KiteAuth | null = null
  private readonly sink: ConnectionSink
  private readonly handler: CallHandler
  private readonly limits: DnodeLimits
  private readonly defaultTimeout: number
  private readonly maxCallbacksHeld: number
  private readonly warnings: RemoteWarnings | null
  private readonly pending: PendingCalls
  private readonly callbacks = new Map<number, LocalCallback>()
  private nextId = 0
  private isClosed = false
  private envelopeHead = ''
  private localKiteValue: KiteIdentity
  private authValue: KiteAuth | null = null
  /**
   * Remembered credentials: the first call id sent with the current credentials (an
   * answer's `authRemembered` counts from there), and whether calls now send a reference.
   */
  private authSince = 0
  private remembering = false
  /** The first call id sent with a reference. */
  private refSince = 0
  private heartbeat: unknown = null
  private readonly timers: Timers
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
    this.observer = o.observer ?? null
    this.timers = o.timers ?? systemTimers
    this.pending = new PendingCalls(this.timers)
    this.auth = o.auth ?? null
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
    this.authSince = this.nextId
    this.remembering = false
    // Sent whole, asking the peer to remember them (Go kites and kite.js ignore the field).
    this.envelopeHead = envelopeHead(this.localKiteValue, auth && { type: auth.type, key: auth.key, remember: true })
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
    const call = this.pending.take(id)
    if (call !== undefined) {
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
      // The peer remembers the credentials this call was sent with (remembered credentials):
      // later calls send `{ type, remembered: true }` instead of the key (0.7–1.5 KiB saved per call).
      if (response.remembered === true && !this.remembering && call.id >= this.authSince && this.authValue !== null) {
        this.remembering = true
        this.refSince = this.nextId
        this.envelopeHead = envelopeHead(this.localKiteValue, { type: this.authValue.type, key: '', remembered: true })
      }
      call.resolve(response.result)
      return
    }
    const err = fromWire(response.error)
    if (isTokenExpired(err)) this.emit('tokenExpired', err)
    // A reference the peer no longer takes (it forgot, or never was what we thought): the next calls
    // send the key whole again (asking anew). This call fails as it was answered.
    else if (this.remembering && call.id >= this.refSince && err.type === 'authenticationError') this.auth = this.authValue
    call.reject(err)
  }

  /**
   * Calls `method` on the peer with `args` (functions among them become
   * callbacks the peer can call) and resolves with its result.
   */
  tell(method: string, args: unknown[] = [], options?: TellOptions): Promise<unknown> {
    if (this.isClosed) return Promise.reject(kiteError('KITE_ERR_SEND_CLOSED'))
    const timeout = options?.timeout ?? this.defaultTimeout
    const obs = this.observer === null ? null : this.observer.clientCall(method, this)
    return new Promise((resolve, reject) => this.send(new PendingCall(method, timeout, resolve, reject, obs), args, obs === null ? null : obs.traceContext))
  }

  private send(call: PendingCall, args: unknown[], trace: TraceCarrier | null): void {
    const id = this.nextId++
    let text: string
    try {
      // The trace context rides in an extra envelope field, which Go kites and kite.js ignore.
      const head = trace === null ? this.envelopeHead : withTraceContext(this.envelopeHead, trace)
      text = encodeCall(call.method, id, head, args, this.register, this.unregister)
    } catch (err) {
      call.reject(err instanceof KiteError ? err : kiteError('KITE_ERR_SEND_FAILED', (err as Error).message))
      return
    }
    this.pending.add(id, call)
    try {
      this.sink.send(text)
    } catch (err) {
      this.pending.take(id)
      call.reject(kiteError('KITE_ERR_SEND_FAILED', (err as Error).message))
    }
  }

  /** Gives a function handed to the peer its callback id. */
  private readonly register = (fn: LocalCallback): number => {
    if (this.callbacks.size >= this.maxCallbacksHeld) throw kiteError('KITE_ERR_CALLBACK_LIMIT', this.maxCallbacksHeld)
    const id = this.nextId++
    this.callbacks.set(id, fn)
    return id
  }

  private readonly unregister = (id: number): void => {
    this.callbacks.delete(id)
  }

  /**
   * Answers a call through the caller's response callback, always in the one-object form;
   * `serialize` (a method's compiled result schema) writes the result's JSON instead of scrubbing it;
   * `remembered` adds `"authRemembered":true` (the connection remembers the credentials the call passed with).
   */
  respond(responseId: number, error: unknown, result: unknown, requestId = '', serialize: ((result: unknown) => string) | null = null, remembered = false): void {
    if (this.isClosed) return
    if (error === null || error === undefined) {
      try {
        this.write(serialize === null ? encodeResultResponse(responseId, result, this.register, this.unregister, remembered) : encodeSerializedResponse(responseId, serialize(result), remembered))
        return
      } catch (err) {
        // A result that cannot be encoded (a BigInt, a cycle) is answered with an error instead.
        this.log.warn({ err: (err as Error).message }, 'cannot encode a result')
        error = kiteError('KITE_ERR_HANDLER_FAILED', `cannot encode result: ${(err as Error).message}`)
      }
    }
    this.write(encodeErrorResponse(responseId, toWire(error, requestId)))
  }

  /** Calls a callback the peer sent us. Returns false when it could not be sent. */
  invokeRemote(id: number, args: unknown[]): boolean {
    if (this.isClosed) return false
    let text: string
    try {
      text = encodeInvocation(id, args, this.register, this.unregister)
    } catch (err) {
      this.log.warn({ err: (err as Error).message, callbackId: id }, 'cannot encode callback arguments')
      return false
    }
    return this.write(text)
  }

  private write(text: string): boolean {
    try {
      this.sink.send(text)
      return true
    } catch (err) {
      this.log.warn({ err }, 'send failed')
      return false
    }
  }

  /** Makes `ping` run now and every `intervalMs` until replaced or the connection closes. */
  setHeartbeat(intervalMs: number, ping: () => void): void {
    if (this.heartbeat !== null) this.timers.clearInterval(this.heartbeat)
    if (this.isClosed) return
    ping()
    this.heartbeat = this.timers.setInterval(ping, intervalMs)
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
    if (this.heartbeat !== null) this.timers.clearInterval(this.heartbeat)
    this.heartbeat = null
    this.log.debug({ callbacksHeld: this.callbacks.size, pendingCalls: this.pending.size, code: this.closeCode }, 'connection closed')
    this.callbacks.clear()
    this.pending.failAll(() => kiteError('KITE_ERR_DISCONNECTED'))
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
