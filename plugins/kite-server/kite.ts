import { EventEmitter } from 'node:events'
import type { FastifyBaseLogger, FastifyRequest, FastifyTypeProvider, FastifyTypeProviderDefault } from 'fastify'
import type { Logger } from 'pino'
import { KiteConnection, type ConnectionSink } from '../../lib/connection/connection.js'
import { RemoteWarnings } from '../../lib/connection/remote-warnings.js'
import { addBuiltins } from '../../lib/methods/builtins.js'
import { addTerminalBuiltins } from '../../lib/methods/terminal.js'
import { MethodTable, type Authenticator } from '../../lib/methods/dispatch.js'
import { ServerMethodTable } from '../../lib/methods/server-dispatch.js'
import { kiteError, usageError } from '../../lib/errors.js'
import type { FinalHandler, KiteHandler, KiteMethod, MethodHandling, MethodOptions } from '../../lib/methods/method.js'
import type { MethodSchema } from '../../lib/methods/schema.js'
import type { AnyMethodDefinition, TypedHandler } from '../../lib/methods/typed.js'
import { kiteToString, localKite, type KiteIdentity, type LocalKiteOptions } from '../../lib/protocol/kite.js'
import type { KiteAuth } from '../../lib/protocol/envelope.js'
import type { KontrolQuery } from '../../lib/protocol/kontrol.js'
import type { KiteClient } from '../../lib/client/client.js'
import type { KitePool, KitePoolOptions } from '../../lib/client/pool.js'
import type { ResolvedServerOptions } from './options.js'
import type { BackpressureOptions } from '../../lib/connection/backpressure.js'
import type { Clock } from '../../lib/methods/throttle.js'
import { KiteTunnelTransport } from './tunnel.js'
import { combineObservers, type KiteObserver } from '../../lib/observe/observer.js'

/** Events of `app.kite`, each with the connection concerned. */
export interface KiteServerEvents {
  connect: [conn: KiteConnection]
  disconnect: [conn: KiteConnection]
  firstRequest: [conn: KiteConnection]
}

/** `app.kite.inject({...})`: one in-process call, as a peer would make it. */
export interface InjectOptions {
  method: string
  args?: unknown[]
  /** Credentials sent with the call (default none: only methods without authentication answer). */
  auth?: KiteAuth | null
  /** The caller's identity (default: a `kite-inject` kite of user `inject`). */
  kite?: Partial<LocalKiteOptions>
  /** Milliseconds to wait for the answer (default the kite's call timeout). */
  timeout?: number
}

/** What kontrol-register provides to `app.kite.getKites`/`getToken`/`pool` (see `setFinder`). */
export interface KiteFinderHook {
  getKites(query: KontrolQuery): Promise<KiteClient[]>
  getToken(query: KontrolQuery, force?: boolean): Promise<string>
  pool(query: KontrolQuery, options?: KitePoolOptions): KitePool
}

/** How a transport hands a new peer to the kite. */
export interface AcceptOptions {
  sink: ConnectionSink
  transport: string
  remoteAddress: string
  /** The HTTP request that opened the session (absent for tunnels this kite dialed). */
  request?: FastifyRequest
}

/** What a transport feeds: a kite connection, or anything else that takes a session's messages (the tunnel proxy's pipes). */
export interface SessionEndpoint {
  readonly log: Logger
  /** One message arrived. */
  receive(text: string): void
  /** The transport is gone (with the close code and reason it saw, when it saw one). */
  transportClosed(code?: number, reason?: string): void
  /** Logs what a remote peer did wrong (never at error level). */
  warnRemote(fields: Record<string, unknown>, msg: string): void
  /** Ends the session from this side with a close code. */
  close(code: number, reason: string): void
}

/** Who the SockJS and WebSocket transports serve: a kite, or the tunnel proxy's public and private sides. */
export interface SessionHost {
  readonly prefix: string
  readonly options: { readonly heartbeatMs: number; readonly disconnectDelayMs: number; readonly backpressure: BackpressureOptions; readonly clock: Clock }
  /** Takes a new session; null turns it away (the server is closing). */
  accept(o: AcceptOptions): SessionEndpoint | null
}

/** What `kite.describe` answers: this kite and its methods with their schemas. */
export interface KiteDescription {
  kite: KiteIdentity
  methods: MethodDescription[]
}

/** One method in `kite.describe`'s answer. */
export interface MethodDescription {
  name: string
  description: string
  /** Whether calls need credentials. */
  authentication: boolean
  /** Whether it is served at `POST <prefix>/methods/<name>` too. */
  http: boolean
  /** `{ args, result }` as JSON Schema (callbacks carry `"x-kite-callback": true`); null without schemas. */
  schema: { args: unknown; result: unknown } | null
}

/**
 * `app.kite`: this app's kite. Its methods, handlers around them,
 * authenticators, and every connected peer. `TP` is the app's type provider
 * (`app.withTypeProvider<TypeBoxTypeProvider>().kite`), which types the
 * arguments and results of methods handled with schemas.
 */
export class Kite<TP extends FastifyTypeProvider = FastifyTypeProviderDefault> extends EventEmitter<KiteServerEvents> implements SessionHost {
  /** This kite's identity, as sent to peers and registered with Kontrol. */
  readonly identity: KiteIdentity
  /** The method table and call pipeline. */
  readonly methods: ServerMethodTable
  /** Every peer connected right now. */
  readonly connections = new Set<KiteConnection>()
  /** The URL path prefix the kite is served under. */
  readonly prefix: string
  /** True once `app.close()` has begun: new connections are turned away. */
  closing = false
  private finder: KiteFinderHook | null = null
  /** Rate limit of warnings caused by what peers send (one warn line per peer address per interval). */
  readonly warnings: RemoteWarnings
  /** @internal set by the plugin: adds the HTTP mirror route of a method */
  mirror: ((method: KiteMethod) => void) | null = null
  private connSeq = 0
  private idleSweep: NodeJS.Timeout | null = null
  private readonly observers: KiteObserver[] = []
  private observerValue: KiteObserver | null = null

  constructor(
    readonly options: ResolvedServerOptions,
    /** The app's logger. */
    readonly log: FastifyBaseLogger,
  ) {
    super()
    this.identity = options.identity
    this.prefix = options.prefix
    this.methods = new ServerMethodTable({
      maxConcurrentCalls: options.maxConcurrentCalls,
      methodHandling: options.methodHandling,
      clock: options.clock,
      onFirstRequest: (conn) => this.emitSafely('firstRequest', conn),
      maxAuthFailures: options.maxAuthFailures,
      authFailureWindowMs: options.authFailureWindowMs,
      checkResults: options.checkResults,
      // Schemas wait for the app's validator compiler, known once the app is ready.
      compileNow: false,
    })
    this.warnings = new RemoteWarnings(options.warnIntervalMs, options.clock)
    for (const [type, fn] of Object.entries(options.authenticators)) this.methods.addAuthenticator(type, fn)
    addBuiltins(this.methods)
    if (options.terminalMethods === true) addTerminalBuiltins(this.methods)
    if (options.describe !== false) {
      const describe = this.methods.handle('kite.describe', { description: 'this kite and its methods with their schemas' }, () => this.describe())
      if (options.describe === 'public') describe.disableAuthentication()
    }
  }

  /**
   * Registers (or replaces) a kite method. Chain `.disableAuthentication()`, `.preHandle()`, `.throttle()`…
   *
   * With options: `handle(name, { schema: { args, result }, auth, handling, throttle, http }, handler)`.
   * `args` is checked by the app's validator compiler before any handler
   * runs (a failure is an `argumentError`); with the app's type provider
   * `req.args` is typed from it and the handler's result from `result`.
   */
  handle(name: string, handler: KiteHandler): KiteMethod
  handle<const S extends MethodSchema>(name: string, options: MethodOptions<S>, handler: TypedHandler<TP, S>): KiteMethod
  handle(name: string, optionsOrHandler: MethodOptions | KiteHandler, handler?: unknown): KiteMethod {
    const method =
      typeof optionsOrHandler === 'function' ? this.methods.handle(name, optionsOrHandler) : this.methods.handle(name, optionsOrHandler, handler as KiteHandler)
    if (this.options.http && typeof optionsOrHandler === 'function') method.http = true
    if (this.options.http && typeof optionsOrHandler !== 'function' && optionsOrHandler.http !== false) method.http = true
    if (method.http) {
      if (this.mirror === null) throw kiteError('KITE_ERR_MIRROR_UNAVAILABLE', name)
      this.mirror(method)
    }
    return method
  }

  /** Handles every method of a module of definitions (`kiteMethods<TP>()`), under its key. */
  handleAll(definitions: Record<string, AnyMethodDefinition>): this {
    for (const [name, def] of Object.entries(definitions)) this.handle(name, def.options as MethodOptions, def.handler as KiteHandler)
    return this
  }

  /** What `kite.describe` answers. */
  describe(): KiteDescription {
    const methods: MethodDescription[] = []
    for (const m of this.methods.methods.values()) {
      const compiled = m.compiledSchema
      methods.push({
        name: m.name,
        description: m.description,
        authentication: m.authenticate,
        http: m.http,
        schema: m.schema === null ? null : { args: compiled?.argsJson ?? m.schema.args ?? null, result: m.schema.result ?? null },
      })
    }
    return { kite: this.identity, methods }
  }

  /** Adds a handler that runs before every method's own handler. */
  preHandle(fn: KiteHandler): this {
    this.methods.preHandle(fn)
    return this
  }

  /** Adds a handler that runs after every method's own handler. */
  postHandle(fn: KiteHandler): this {
    this.methods.postHandle(fn)
    return this
  }

  /** Adds a handler that runs last for every method, with the outcome. */
  finalHandle(fn: FinalHandler): this {
    this.methods.finalHandle(fn)
    return this
  }

  /** Sets which result chains answer with, for methods that do not set their own. */
  setMethodHandling(mode: MethodHandling): this {
    if (mode !== 'method' && mode !== 'first' && mode !== 'latest') throw usageError('KITE_ERR_METHOD_SETUP', `unknown method handling ${String(mode)}`)
    this.methods.methodHandling = mode
    return this
  }

  /** Registers the authenticator for an `authentication.type` (e.g. `sessionID`). */
  addAuthenticator(type: string, fn: Authenticator): this {
    this.methods.addAuthenticator(type, fn)
    return this
  }

  /**
   * Adds an observer (`kiteMetrics` and `kiteTracing` add theirs): it watches
   * every call to this kite's methods and every call this kite makes to its
   * peers (`conn.tell`, and the KiteClients `getKites` hands out).
   */
  addObserver(observer: KiteObserver): this {
    if (observer === null || typeof observer !== 'object' || typeof observer.serverCall !== 'function' || typeof observer.clientCall !== 'function') {
      throw usageError('KITE_ERR_METHOD_SETUP', 'addObserver needs an object with serverCall and clientCall')
    }
    this.observers.push(observer)
    this.applyObservers()
    return this
  }

  /**
   * Takes an observer added with `addObserver` off again (calls already
   * running still end their observations); false when it was not installed.
   */
  removeObserver(observer: KiteObserver): boolean {
    const i = this.observers.indexOf(observer)
    if (i === -1) return false
    this.observers.splice(i, 1)
    this.applyObservers()
    return true
  }

  private applyObservers(): void {
    this.observerValue = combineObservers(this.observers)
    this.methods.observer = this.observerValue
    for (const conn of this.connections) conn.observer = this.observerValue
  }

  /** All observers as one, or null when none is installed. */
  get observer(): KiteObserver | null {
    return this.observerValue
  }

  /**
   * Sets the username this kite is registered and addressed under (kontrol-register
   * sets its kite.key's `sub`, as Go's config does). Only before the server listens.
   */
  setUsername(username: string): this {
    if (typeof username !== 'string' || username === '' || username.includes('/')) throw usageError('KITE_ERR_IDENTITY_INVALID', 'kite username must be non-empty and free of "/"')
    if (this.connections.size > 0) throw kiteError('KITE_ERR_USERNAME_LOCKED')
    this.identity.username = username
    return this
  }

  /** Declares who answers `getKites`/`getToken` (kontrol-register does); once. */
  setFinder(finder: KiteFinderHook): this {
    if (this.finder !== null) throw kiteError('KITE_ERR_FINDER_TAKEN')
    this.finder = finder
    return this
  }

  /**
   * Clients for the kites Kontrol finds for `query`, with their tokens (needs kontrol-register);
   * rejects with `KITE_ERR_KONTROL_NO_KITES` when none match, as Go's kontrolclient (Kontrol's
   * wire answer stays an empty list, and the finder returns it as is: pools rely on that).
   */
  async getKites(query: KontrolQuery): Promise<KiteClient[]> {
    if (this.finder === null) throw kiteError('KITE_ERR_NEEDS_KONTROL_REGISTER', 'getKites')
    const kites = await this.finder.getKites(query)
    if (kites.length === 0) throw kiteError('KITE_ERR_KONTROL_NO_KITES')
    return kites
  }

  /**
   * A live pool of the kites matching `query` (needs kontrol-register): each
   * call goes to one of them by strategy, with failover and a circuit breaker
   * per kite. Close it with `pool.close()` (the app does not).
   */
  pool(query: KontrolQuery, options: KitePoolOptions = {}): KitePool {
    if (this.finder === null) throw kiteError('KITE_ERR_NEEDS_KONTROL_REGISTER', 'pool')
    return this.finder.pool(query, options)
  }

  /** A token for the one kite matching `query` (needs kontrol-register). */
  getToken(query: KontrolQuery, force = false): Promise<string> {
    if (this.finder === null) return Promise.reject(kiteError('KITE_ERR_NEEDS_KONTROL_REGISTER', 'getToken'))
    return this.finder.getToken(query, force)
  }

  /** The `/username/environment/name/version/region/hostname/id` form of this kite. */
  override toString(): string {
    return kiteToString(this.identity)
  }

  /**
   * Calls one of this kite's methods in-process, without a socket (as Fastify's
   * `inject` does for routes): the call goes through the whole pipeline
   * (envelope, authentication, handlers, callbacks both ways) over an in-memory
   * connection that is closed once the answer is in. Resolves with the result;
   * rejects with the KiteError the caller would get.
   * `inject('square', 4)` or `inject({ method, args, auth, kite, timeout })`.
   */
  async inject(methodOrOptions: string | InjectOptions, ...args: unknown[]): Promise<unknown> {
    const o: InjectOptions = typeof methodOrOptions === 'string' ? { method: methodOrOptions, args } : methodOrOptions
    let server: KiteConnection | null = null
    let caller: KiteConnection | null = null
    const deliver = (to: () => KiteConnection | null, text: string): void => {
      queueMicrotask(() => to()?.receive(text))
    }
    const closeBoth = (): void => {
      queueMicrotask(() => {
        server?.transportClosed()
        caller?.transportClosed()
      })
    }
    server = this.accept({ sink: { send: (text) => deliver(() => caller, text), close: closeBoth }, transport: 'inject', remoteAddress: 'inject' })
    if (server === null) throw kiteError('KITE_ERR_SEND_CLOSED')
    const callerMethods = new MethodTable()
    addBuiltins(callerMethods)
    caller = new KiteConnection({
      sink: { send: (text) => deliver(() => server, text), close: closeBoth },
      handler: callerMethods,
      limits: this.options.limits,
      log: server.log,
      localKite: localKite({ name: 'kite-inject', version: '1.0.0', username: 'inject', ...o.kite }),
      auth: o.auth ?? null,
      defaultTimeout: this.options.callTimeoutMs,
      transport: 'inject',
    })
    try {
      return await caller.tell(o.method, o.args ?? [], o.timeout === undefined ? {} : { timeout: o.timeout })
    } finally {
      caller.close(1000, 'inject done')
    }
  }

  /** Called by transports for each new peer. Returns null when the kite is closing. */
  accept(o: AcceptOptions): KiteConnection | null {
    if (this.closing) return null
    const log = this.log.child({ conn: ++this.connSeq, transport: o.transport, remote: o.remoteAddress }) as unknown as Logger
    const conn = new KiteConnection({
      sink: o.sink,
      handler: this.methods,
      limits: this.options.limits,
      log,
      localKite: this.identity,
      auth: null,
      defaultTimeout: this.options.callTimeoutMs,
      remoteAddress: o.remoteAddress,
      transport: o.transport,
      maxCallbacksHeld: this.options.maxCallbacksHeld,
      warnings: this.warnings,
      observer: this.observerValue,
    })
    this.connections.add(conn)
    conn.once('close', () => {
      this.connections.delete(conn)
      log.debug({ code: conn.closeCode, reason: conn.closeReason }, 'peer disconnected')
      this.emitSafely('disconnect', conn)
    })
    log.debug('peer connected')
    this.emitSafely('connect', conn)
    return conn
  }

  /**
   * Closes connections that never authenticated and made no successful call
   * for `idleTimeoutMs`: one timer for the whole kite, looking at a counter
   * each connection bumps per successful call (nothing on the hot path).
   */
  startIdleSweep(): void {
    const idle = this.options.idleTimeoutMs
    if (idle === 0 || this.idleSweep !== null) return
    const seen = new WeakMap<KiteConnection, { count: number; since: number }>()
    this.idleSweep = setInterval(() => {
      const now = this.options.clock()
      for (const conn of this.connections) {
        if (conn.authenticated) continue
        const last = seen.get(conn)
        if (last === undefined || last.count !== conn.successCount) {
          seen.set(conn, { count: conn.successCount, since: now })
          continue
        }
        if (now - last.since < idle) continue
        conn.warnRemote({ idleMs: now - last.since }, 'closing connection: unauthenticated and idle')
        conn.close(1008, 'idle: no successful call')
      }
    }, Math.max(Math.min(Math.floor(idle / 4), 5000), 10))
    this.idleSweep.unref()
  }

  /**
   * `kite.tunnel {url}` (spec §12.1): dials the tunnel proxy's `ws(s)://…/tunnel/…/websocket?token=…`
   * URL and serves this kite's normal session over that outbound connection, with
   * the same limits and authentication as any connection. Resolves once the tunnel is open.
   */
  async serveTunnel(arg: unknown): Promise<null> {
    const raw = arg !== null && typeof arg === 'object' ? (arg as { url?: unknown }).url : undefined
    if (typeof raw !== 'string' || !URL.canParse(raw)) throw kiteError('KITE_ERR_ARGUMENT_INVALID', 'kite.tunnel needs {url}')
    const url = new URL(raw)
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw kiteError('KITE_ERR_ARGUMENT_INVALID', 'kite.tunnel needs a ws:// or wss:// URL')
    if (this.closing) throw kiteError('KITE_ERR_SERVER_CLOSING')
    let conn: KiteConnection | null = null
    const early: string[] = []
    let lost = false
    // Dialed as the G kite does: the WebSocket URL as given, with `Origin: http://<host>` (https for wss).
    const dialed = new URL(url.href)
    dialed.protocol = url.protocol === 'wss:' ? 'https:' : 'http:'
    const transport = new KiteTunnelTransport(
      dialed,
      {
        message: (text) => (conn === null ? early.push(text) : conn.receive(text)),
        close: () => {
          lost = true
          conn?.transportClosed(transport.closeCode, transport.closeReason)
        },
      },
      { maxPayload: this.options.limits.maxMessageBytes * 2 + 1024, idleTimeoutMs: this.options.heartbeatMs * 3, backpressure: this.options.backpressure },
    )
    try {
      await transport.open(AbortSignal.timeout(this.options.callTimeoutMs > 0 ? this.options.callTimeoutMs : 15000))
    } catch (err) {
      transport.close()
      throw kiteError('KITE_ERR_CONNECT_FAILED', `${url.origin}${url.pathname}`, (err as Error).message)
    }
    conn = this.accept({ sink: { send: (text) => transport.send(text), close: (code, reason) => transport.closeWith(code, reason) }, transport: 'tunnel', remoteAddress: url.host })
    if (conn === null) {
      transport.closeWith(1001, 'server shutting down')
      throw kiteError('KITE_ERR_SERVER_CLOSING')
    }
    for (const text of early.splice(0)) conn.receive(text)
    if (lost) conn.transportClosed(transport.closeCode, transport.closeReason)
    return null
  }

  private emitSafely(event: keyof KiteServerEvents, conn: KiteConnection): void {
    try {
      this.emit(event, conn)
    } catch (err) {
      conn.log.warn({ err, event }, 'kite event listener failed')
    }
  }

  /**
   * Graceful stop: turn new peers away, let running calls finish within
   * `closeGraceMs`, answer the rest with an error, then close every connection
   * with 1001 (going away).
   */
  async shutdown(): Promise<void> {
    this.closing = true
    if (this.idleSweep !== null) clearInterval(this.idleSweep)
    this.idleSweep = null
    const finished = await this.methods.drain(this.options.closeGraceMs)
    if (!finished) {
      const aborted = this.methods.abortRunning()
      this.log.warn({ aborted }, 'kite closing: calls still running were answered with an error')
    }
    for (const conn of [...this.connections]) conn.close(1001, 'server shutting down')
  }
}
