import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { KiteError, kiteError } from '../errors.js'
import { checkOptions, KiteOptionError, type OptionChecker } from '../options.js'
import { checkClientOptions } from './check-options.js'
import { KiteConnection } from '../connection/connection.js'
import { resolveLimits, type DnodeLimits } from '../dnode/limits.js'
import { silentLogger } from '../silent-logger.js'
import { addPing, heartbeat, log } from '../methods/builtins.js'
import { MethodTable } from '../methods/dispatch.js'
import type { KiteHandler, KiteMethod } from '../methods/method.js'
import type { TypedClient } from '../methods/typed.js'
import type { KiteAuth } from '../protocol/envelope.js'
import type { KiteObserver } from '../observe/observer.js'
import { localKite, type KiteIdentity, type LocalKiteOptions } from '../protocol/kite.js'
import { Backoff, type BackoffOptions } from './backoff.js'
import { resolveBackpressure, type BackpressureOptions } from '../connection/backpressure.js'
import type { Timers } from '../connection/pending.js'
import { RawWebSocketTransport, SockjsWebSocketTransport } from './transports/websocket.js'
import { XhrPollingTransport } from './transports/xhr.js'
import type { ClientTlsOptions, ClientTransport, TransportEvents, TransportName } from './transports/transport.js'
import type { KontrolQuery } from '../protocol/kontrol.js'
import { poolThroughKontrol } from './finder.js'
import type { KitePool, KitePoolOptions } from './pool.js'

/** Options of a KiteClient. */
export interface KiteClientOptions {
  /** `sockjs` (default for http(s) URLs), `websocket` (raw; default for ws(s) URLs), `xhr-polling`, or `auto` (SockJS WebSocket, else XHR polling when the upgrade is refused). */
  transport?: TransportName
  /**
   * Credentials sent with every call; can be swapped later with `client.auth = …`.
   * `{ type: 'kiteKey' }` with no key sends this machine's kite.key (`$KITE_HOME/kite.key`).
   */
  auth?: KiteAuth | { type: 'kiteKey'; key?: '' } | null
  /** Where to look for kite.key (default `$KITE_HOME`, else `~/.kite`). */
  kiteHome?: string
  /** This client's identity as sent to the server (defaults: name `kite-client`, version `1.0.0`). */
  kite?: Partial<LocalKiteOptions>
  /** How long `connect()` may take, in ms. Default 15000. */
  connectTimeout?: number
  /** Default per-call timeout in ms; 0 waits until the connection drops. Default 15000. */
  timeout?: number
  /** A WebSocket that brings nothing (frames, `h`, pongs to our pings) for this many ms is dropped. Default 60000; 0 never. */
  idleTimeout?: number
  /** Reconnect for ever after the connection drops. Default false. */
  reconnect?: boolean
  /** Reconnect backoff (default 500 ms × 1.5 up to 60 s, ±50 %). */
  backoff?: BackoffOptions
  /** Limits on messages from the server. */
  limits?: Partial<DnodeLimits>
  /** A pino logger; default: silent. */
  logger?: Logger
  /** Unsent bytes above which reading from the server pauses until they drain. Default 4 MiB. */
  maxBufferedBytes?: number
  /** How long unsent bytes may stay above `maxBufferedBytes` before the connection is dropped, in ms. Default 10000. */
  backpressureGraceMs?: number
  /** Most functions this client may have handed the server (callbacks it can still call). Default 100000. */
  maxCallbacksHeld?: number
  /**
   * Watches this client's calls (both ways): `kiteTracing()` for spans and
   * trace context, `app.kiteMetrics.observer` for metrics, or several through
   * `combineObservers`. Default none.
   */
  observer?: KiteObserver | null
  /** TLS for https/wss kites, on every transport: `ca` (trust a private CA), `cert`/`key` (client certificate), `rejectUnauthorized`, `servername`. */
  tls?: ClientTlsOptions
  /** The timers of call timeouts (`setTimeout`, `clearTimeout`, `setInterval`, `clearInterval`); tests give fake ones to move time themselves. Default Node's. */
  timers?: Timers
}

/** Events of a KiteClient. */
export interface KiteClientEvents {
  /** Connected (first time and after each reconnect). */
  connect: []
  /** The connection dropped; pending calls have failed with `disconnect`. */
  disconnect: [reason: string]
  /** Connected again after a drop; `attempt` counts the dials it took. */
  reconnect: [attempt: number]
  /** A call failed with `token is expired`; renew and set `client.auth`. */
  tokenExpired: [error: KiteError]
  /** A reconnect attempt failed (the client keeps trying). */
  error: [error: Error]
  /** `close()` was called: the client is done for good. */
  close: []
}

/** Per-call options. */
export interface CallOptions {
  /** Milliseconds to wait for the result; 0 waits until the connection drops. */
  timeout?: number
}

function defaultTransport(url: URL): TransportName {
  return url.protocol === 'ws:' || url.protocol === 'wss:' ? 'websocket' : 'sockjs'
}

/**
 * A connection to one kite: `await client.connect(); await client.tell('square', 4)`.
 * Functions among the arguments become callbacks the remote kite can call.
 * The remote kite can call this client's methods too (`client.handle`).
 */
export class KiteClient extends EventEmitter<KiteClientEvents> {
  readonly url: URL
  readonly transportName: TransportName
  /** This client's identity, sent in every call. */
  readonly kite: KiteIdentity
  /** Methods the remote kite may call on this client (`kite.ping`, `kite.heartbeat`, `kite.log` built in). */
  readonly methods: MethodTable
  private readonly options: KiteClientOptions
  private readonly limits: Readonly<DnodeLimits>
  private readonly backpressure: BackpressureOptions
  private readonly log: Logger
  private readonly backoff: Backoff
  private authValue: KiteAuth | null
  private conn: KiteConnection | null = null
  private transport: ClientTransport | null = null
  private closedByUser = false
  private reconnectTimer: NodeJS.Timeout | null = null
  private dialing: Promise<void> | null = null
  private abortDial: AbortController | null = null

  constructor(url: string | URL, options: KiteClientOptions = {}) {
    super()
    const c: OptionChecker = checkOptions('KiteClient', options)
    try {
      this.url = new URL(url)
    } catch {
      throw new KiteOptionError('KiteClient', 'url', `must be a URL, got ${String(url)}`)
    }
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(this.url.protocol)) throw new KiteOptionError('KiteClient', 'url', `must be an http(s) or ws(s) URL, got ${this.url.href}`)
    this.transportName = c.oneOf('transport', ['sockjs', 'websocket', 'xhr-polling', 'auto'] as const, defaultTransport(this.url))
    this.options = options
    try {
      this.limits = resolveLimits(options.limits)
    } catch (err) {
      c.fail('limits', (err as Error).message)
    }
    checkClientOptions(c)
    const timers = c.raw('timers')
    if (timers !== undefined && (timers === null || typeof timers !== 'object' || !(['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] as const).every((f) => typeof (timers as Timers)[f] === 'function'))) {
      c.fail('timers', 'must have setTimeout, clearTimeout, setInterval and clearInterval functions')
    }
    this.backpressure = resolveBackpressure('KiteClient', { maxBufferedBytes: options.maxBufferedBytes, graceMs: options.backpressureGraceMs })
    this.log = (options.logger ?? silentLogger()).child({ kiteClient: this.url.href })
    try {
      this.backoff = new Backoff(c.object('backoff'))
    } catch (err) {
      c.fail('backoff', (err as Error).message)
    }
    this.authValue = options.auth === undefined || options.auth === null ? null : { type: options.auth.type, key: options.auth.key ?? '' }
    try {
      this.kite = localKite({ name: 'kite-client', version: '1.0.0', ...c.object('kite') })
    } catch (err) {
      c.fail('kite', (err as Error).message)
    }
    this.methods = new MethodTable()
    this.methods.observer = options.observer ?? null
    addPing(this.methods)
    this.methods.handle('kite.heartbeat', heartbeat).disableAuthentication()
    this.methods.handle('kite.log', log).disableAuthentication()
  }

  /** What watches this client's calls; setting it applies to the calls that follow. */
  get observer(): KiteObserver | null {
    return this.methods.observer
  }

  set observer(observer: KiteObserver | null) {
    this.methods.observer = observer
    if (this.conn !== null) this.conn.observer = observer
  }

  /** True while connected. */
  get connected(): boolean {
    return this.conn !== null && !this.conn.closed
  }

  /** The credentials sent with calls; setting them takes effect at once, without reconnecting. */
  get auth(): KiteAuth | null {
    return this.authValue
  }

  set auth(auth: KiteAuth | null) {
    this.authValue = auth
    if (this.conn !== null) this.conn.auth = auth
  }

  /**
   * Exposes a method the remote kite can call on this client. The caller is
   * the kite this client dialed, so no authentication is asked by default.
   */
  handle(name: string, handler: KiteHandler): KiteMethod {
    return this.methods.handle(name, handler).disableAuthentication()
  }

  /** Connects (once); rejects with a `timeout` or `sendError` KiteError. */
  connect(): Promise<void> {
    if (this.closedByUser) return Promise.reject(kiteError('KITE_ERR_SEND_CLOSED'))
    if (this.connected) return Promise.resolve()
    this.dialing ??= this.dial().finally(() => {
      this.dialing = null
    })
    return this.dialing
  }

  private makeTransport(kind: Exclude<TransportName, 'auto'>, events: TransportEvents): ClientTransport {
    const opts = { maxPayload: this.limits.maxMessageBytes * 2 + 1024, idleTimeoutMs: this.options.idleTimeout ?? 60000, backpressure: this.backpressure, tls: this.options.tls }
    if (kind === 'websocket') return new RawWebSocketTransport(this.url, events, opts)
    if (kind === 'xhr-polling') return new XhrPollingTransport(this.url, events, this.backpressure, this.options.tls)
    return new SockjsWebSocketTransport(this.url, events, opts)
  }

  /** Opens the configured transport; `auto` falls back to XHR polling only on a refused upgrade. */
  private async openTransport(events: TransportEvents, signal: AbortSignal): Promise<ClientTransport> {
    const kind = this.transportName === 'auto' ? 'sockjs' : this.transportName
    const transport = this.makeTransport(kind, events)
    try {
      await transport.open(signal)
      return transport
    } catch (err) {
      transport.close()
      const refused = err instanceof KiteError && err.code === 'KITE_ERR_TRANSPORT_UPGRADE_REFUSED'
      if (this.transportName !== 'auto' || !refused || signal.aborted) throw err
      this.log.debug({ err: (err as Error).message }, 'WebSocket refused; falling back to XHR polling')
      const fallback = this.makeTransport('xhr-polling', events)
      try {
        await fallback.open(signal)
        return fallback
      } catch (err2) {
        fallback.close()
        throw err2
      }
    }
  }

  /** Fills `{type: 'kiteKey'}` with the kite.key found on this machine. */
  private async loadKiteKey(): Promise<void> {
    if (this.authValue?.type !== 'kiteKey' || this.authValue.key !== '') return
    // Imported only here: most clients never read a kite.key (and a page has none).
    const { kiteKeyPath, readKiteKey } = await import('../kitekey.js')
    const path = this.options.kiteHome !== undefined ? kiteKeyPath({ KITE_HOME: this.options.kiteHome }) : kiteKeyPath()
    this.authValue = { type: 'kiteKey', key: await readKiteKey(path) }
  }

  private async dial(): Promise<void> {
    await this.loadKiteKey()
    const timeoutMs = this.options.connectTimeout ?? 15000
    const abort = new AbortController()
    this.abortDial = abort
    const timer = setTimeout(() => abort.abort(kiteError('KITE_ERR_CONNECT_TIMEOUT', this.url.href, timeoutMs)), timeoutMs)
    let conn: KiteConnection | null = null
    // Frames can arrive before the connection object exists (in the same read as the handshake).
    const early: string[] = []
    let lostReason = 'connection closed by this side'
    let transport: ClientTransport
    try {
      transport = await this.openTransport(
        {
          message: (text) => (conn === null ? early.push(text) : conn.receive(text)),
          close: (reason) => {
            lostReason = reason
            conn?.transportClosed()
            this.onLost(reason)
          },
        },
        abort.signal,
      )
    } catch (err) {
      // A timeout or close() while dialing says so; whatever the transport met is a failed connect.
      if (err instanceof KiteError && (err.code === 'KITE_ERR_CONNECT_TIMEOUT' || err.code === 'KITE_ERR_SEND_CLOSED')) throw err
      throw kiteError('KITE_ERR_CONNECT_FAILED', this.url.href, (err as Error).message)
    } finally {
      clearTimeout(timer)
      this.abortDial = null
    }
    if (this.closedByUser) {
      transport.close()
      throw kiteError('KITE_ERR_SEND_CLOSED')
    }
    conn = new KiteConnection({
      sink: { send: (text) => transport.send(text), close: () => transport.close() },
      handler: this.methods,
      limits: this.limits,
      log: this.log,
      localKite: this.kite,
      auth: this.authValue,
      defaultTimeout: this.options.timeout ?? 15000,
      transport: this.transportName,
      remoteAddress: this.url.host,
      maxCallbacksHeld: this.options.maxCallbacksHeld,
      observer: this.methods.observer,
      timers: this.options.timers,
    })
    conn.on('tokenExpired', (err: KiteError) => this.emit('tokenExpired', err))
    // The connection may also end from this side (a message breaking the limits): that is a loss too.
    const own = conn
    own.once('close', () => {
      if (this.conn === own) this.onLost(lostReason)
    })
    this.conn = conn
    this.transport = transport
    for (const text of early.splice(0)) conn.receive(text)
    this.backoff.reset()
    this.log.debug('connected')
    this.emit('connect')
  }

  private onLost(reason: string): void {
    if (this.transport === null) return
    this.transport = null
    this.conn = null
    this.log.debug({ reason }, 'disconnected')
    this.emit('disconnect', reason)
    if (this.options.reconnect === true && !this.closedByUser) this.scheduleReconnect(1)
  }

  private scheduleReconnect(attempt: number): void {
    const delay = this.backoff.next()
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      this.connect().then(
        () => this.emit('reconnect', attempt),
        (err: Error) => {
          if (this.closedByUser) return
          this.log.debug({ err: err.message, attempt }, 'reconnect failed')
          if (this.listenerCount('error') > 0) this.emit('error', err)
          this.scheduleReconnect(attempt + 1)
        },
      )
    }, delay)
  }

  /** Calls `method` with `args` and resolves with its result (default timeout from the options). */
  tell(method: string, ...args: unknown[]): Promise<unknown> {
    return this.call(method, args)
  }

  /** `tell` with its own timeout in ms (0 = until disconnect). */
  tellWithTimeout(method: string, timeoutMs: number, ...args: unknown[]): Promise<unknown> {
    return this.call(method, args, { timeout: timeoutMs })
  }

  /**
   * This client as a typed object: `client.typed<typeof mathMethods>().square(4)`
   * resolves with a number, checked by tsc against the methods' schemas (a
   * type-only import of the module that defines them with `kiteMethods()`).
   * Each property calls the method of that name, with the default timeout.
   */
  typed<M>(): TypedClient<M> {
    const cache = new Map<string, (...args: unknown[]) => Promise<unknown>>()
    return new Proxy({} as TypedClient<M>, {
      get: (_target, name) => {
        if (typeof name !== 'string' || name === 'then') return undefined
        let fn = cache.get(name)
        if (fn === undefined) {
          fn = (...args: unknown[]) => this.call(name, args)
          cache.set(name, fn)
        }
        return fn
      },
    })
  }

  /** Calls `method` with an argument list and per-call options. */
  call(method: string, args: unknown[] = [], options?: CallOptions): Promise<unknown> {
    const conn = this.conn
    if (conn === null || conn.closed) return Promise.reject(kiteError(this.closedByUser ? 'KITE_ERR_SEND_CLOSED' : 'KITE_ERR_SEND_NOT_CONNECTED'))
    return conn.tell(method, args, options)
  }

  /**
   * A pool of the kites matching `query`, found through this client, which
   * must be a connection to Kontrol (authenticated with a kite.key or a token).
   * Each pooled kite gets its own client and token. The pool does not close this client.
   */
  pool(query: KontrolQuery, options: KitePoolOptions = {}): KitePool {
    return poolThroughKontrol(this, query, options)
  }

  /** Closes for good: no reconnect; pending calls fail with `disconnect`. Idempotent. */
  async close(): Promise<void> {
    if (!this.closedByUser) queueMicrotask(() => this.emit('close'))
    this.closedByUser = true
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    this.abortDial?.abort(kiteError('KITE_ERR_SEND_CLOSED'))
    const conn = this.conn
    this.conn = null
    this.transport = null
    conn?.close(1000, 'client closed')
    await this.dialing?.catch(() => {})
  }
}
