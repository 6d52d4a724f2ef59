import { KiteError, kiteError, usageError } from '../errors.js'
import type { CallHandler, IncomingCall, KiteConnection } from '../connection/connection.js'
import { parseEnvelope, type KiteAuth } from '../protocol/envelope.js'
import { emptyKite, type KiteIdentity } from '../protocol/kite.js'
import { HandlerLists, KiteMethod, type FinalHandler, type KiteHandler, type MethodHandling, type MethodOptions, type Outcome } from './method.js'
import { KiteRequest } from './request.js'
import { callLogStart, logCall } from './call-log.js'
import { CompiledSchema, type SerializerCompiler, type ValidatorCompiler } from './schema.js'
import { defaultValidatorCompiler } from './schema-compiler.js'
import { passThrough, readTraceCarrier, type CallObservation, type KiteObserver } from '../observe/observer.js'
import type { Clock } from './throttle.js'

/** What an authenticator is given: the credentials and who claims to send them. */
export interface AuthContext {
  authentication: KiteAuth
  /** The identity the caller claims (not yet trusted). */
  kite: KiteIdentity
  method: string
  /** The connection the call came on; null when credentials arrive another way (Kontrol's HTTP register). */
  connection: KiteConnection | null
}

/** The outcome of a successful authentication. */
export interface AuthResult {
  /** The authenticated username; replaces the claimed one. */
  username: string
  /**
   * The connection remembers these credentials: when the caller asked
   * (`remember`), the answer says so (`authRemembered`), and its next calls may
   * send `{ type, remembered: true }` instead of the key, which this
   * authenticator must then accept. kite-auth's `kiteKey` and `token` do this
   * on WebSocket connections.
   */
  remember?: boolean
}

/** Checks credentials of one `authentication.type`; throws (any error) to refuse. */
export type Authenticator = (ctx: AuthContext) => AuthResult | Promise<AuthResult>

export interface MethodTableOptions {
  /** Most calls from one connection handled at once; more get `requestLimitError`. Default 1000. */
  maxConcurrentCalls?: number
  /** Which result a chain answers with unless a method says otherwise. Default `method`. */
  methodHandling?: MethodHandling
  /** Called once per connection, on its first call, after the caller's identity is known. */
  onFirstRequest?: (conn: KiteConnection) => void
  clock?: Clock
  /**
   * Check results against `result` schemas (a failing result becomes
   * `KITE_ERR_RESULT_INVALID`). Default: on unless NODE_ENV is `production`.
   */
  checkResults?: boolean
  /**
   * Where schemas are compiled. Default: a compiler built as Fastify builds
   * its default one. kite-server gives the app's, once the app is ready.
   */
  validatorCompiler?: ValidatorCompiler
  /** False: keep schemas uncompiled until `useValidatorCompiler()` (kite-server does this until the app is ready). */
  compileNow?: boolean
}

interface Chain {
  pre: KiteHandler[]
  post: KiteHandler[]
  final: FinalHandler[]
}

/** The chain of a method with no handlers around it. */
const PLAIN: Chain = Object.freeze({ pre: [], post: [], final: [] }) as unknown as Chain

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function'
}

/**
 * The methods of a kite and the pipeline that runs them:
 * find method → envelope → identity → concurrency → authenticate → throttle →
 * pre → main → post → final → respond. Each stage is a named step below.
 */
export class MethodTable extends HandlerLists implements CallHandler {
  readonly methods = new Map<string, KiteMethod>()
  methodHandling: MethodHandling
  /** Watches every call to a known method (metrics, tracing); null when nothing watches. */
  observer: KiteObserver | null = null
  private readonly maxConcurrent: number
  private readonly onFirstRequest: (conn: KiteConnection) => void
  protected readonly clock: Clock
  protected accepting = true
  protected running = 0
  /** Calls still owed an answer; an entry is removed by whoever answers first. */
  protected readonly active = new Map<KiteRequest, IncomingCall>()
  protected drained: (() => void) | null = null
  private compiler: ValidatorCompiler | null
  private serializer: SerializerCompiler | null = null
  private compileNow: boolean
  /** Whether results are checked against `result` schemas. */
  readonly checkResults: boolean

  constructor(options: MethodTableOptions = {}) {
    super()
    this.compiler = options.validatorCompiler ?? null
    this.compileNow = options.compileNow ?? true
    this.checkResults = options.checkResults ?? process.env.NODE_ENV !== 'production'
    this.maxConcurrent = options.maxConcurrentCalls ?? 1000
    if (!Number.isInteger(this.maxConcurrent) || this.maxConcurrent < 1) throw usageError('KITE_ERR_METHOD_SETUP', 'maxConcurrentCalls must be a positive integer')
    this.methodHandling = options.methodHandling ?? 'method'
    this.onFirstRequest = options.onFirstRequest ?? (() => {})
    this.clock = options.clock ?? Date.now
  }

  /**
   * Registers (or replaces) a method: `handle(name, handler)`, or
   * `handle(name, { schema, auth, handling, throttle, http }, handler)`.
   */
  handle(name: string, handler: KiteHandler): KiteMethod
  handle(name: string, options: MethodOptions, handler: KiteHandler): KiteMethod
  handle(name: string, optionsOrHandler: MethodOptions | KiteHandler, maybeHandler?: KiteHandler): KiteMethod {
    const options = typeof optionsOrHandler === 'function' ? {} : optionsOrHandler
    const handler = typeof optionsOrHandler === 'function' ? optionsOrHandler : maybeHandler
    if (options === null || typeof options !== 'object') throw usageError('KITE_ERR_METHOD_SETUP', `method ${name}: options must be an object`)
    const method = new KiteMethod(name, handler as KiteHandler, this.clock)
    if (options.auth === false) method.disableAuthentication()
    if (options.handling !== undefined) method.methodHandling(options.handling)
    if (options.throttle !== undefined) method.throttle(options.throttle)
    if (options.http === true) method.http = true
    method.description = options.description ?? options.schema?.description ?? ''
    if (options.schema !== undefined) {
      if (options.schema === null || typeof options.schema !== 'object') throw usageError('KITE_ERR_METHOD_SETUP', `method ${name}: schema must be an object`)
      method.schema = options.schema
      if (this.compileNow) this.compile(method)
    }
    this.methods.set(name, method)
    return method
  }

  /**
   * Compiles every method's schemas with `compiler` (the app's validator
   * compiler), and the schemas of methods added later at once.
   */
  useValidatorCompiler(compiler: ValidatorCompiler, serializer: SerializerCompiler | null = null): void {
    this.compiler = compiler
    this.serializer = serializer
    this.compileNow = true
    for (const method of this.methods.values()) if (method.schema !== null) this.compile(method)
  }

  private compile(method: KiteMethod): void {
    this.compiler ??= defaultValidatorCompiler()
    try {
      method.compiledSchema = new CompiledSchema(method.schema!, this.compiler, method.name, this.checkResults, this.serializer)
    } catch (err) {
      throw usageError('KITE_ERR_METHOD_SETUP', `method ${method.name}: cannot compile its schema: ${(err as Error).message}`)
    }
  }

  /** Calls being handled right now, on every connection. */
  get inFlight(): number {
    return this.running
  }

  /**
   * Runs one call. A plain method (no authentication, throttle or chain)
   * whose handler returns a value answers synchronously, inside the read of
   * the socket, so its answer leaves before the next message is parsed.
   */
  handleCall(conn: KiteConnection, call: IncomingCall): void {
    const method = this.methods.get(call.method)
    if (method === undefined) {
      conn.log.debug({ method: call.method }, 'method not found')
      this.reply(conn, call, kiteError('KITE_ERR_METHOD_NOT_FOUND', call.method), null, '')
      return
    }
    const envelope = parseEnvelope(call.args, conn.remoteKite === null)
    if (typeof envelope === 'string') {
      this.refuseEnvelope(conn, call, envelope)
      return
    }
    // A reference to remembered credentials (kite-server's table puts the key in).
    if (envelope.authentication !== null && envelope.authentication.remembered === true) this.referred(conn, envelope.authentication)
    const caller = this.identify(conn, envelope.kite)
    const obs = this.observer === null ? null : this.observer.serverCall({ method: method.name, caller, connection: conn, traceContext: readTraceCarrier(call.args[0]) })
    if (!this.accepting) {
      this.refuse(conn, call, kiteError('KITE_ERR_SERVER_CLOSING'), obs)
      return
    }
    if (conn.inFlight >= this.maxConcurrent) {
      this.refuse(conn, call, kiteError('KITE_ERR_CONCURRENCY_LIMIT', this.maxConcurrent), obs)
      return
    }
    const req = new KiteRequest(method.name, envelope.withArgs, caller, envelope.authentication, conn)
    // The call log (one info line per call, as Fastify's request log): only when info is on.
    req.startedAt = callLogStart(conn)
    let outcome: unknown
    try {
      // An observation with no context to enter (metrics, a no-op tracer) costs no closure.
      outcome = obs === null || obs.run === passThrough ? this.run(method, req) : obs.run(() => this.run(method, req))
    } catch (err) {
      this.fail(conn, call, req, err)
      if (obs !== null) obs.end(err)
      return
    }
    if (isThenable(outcome)) void this.track(conn, call, req, Promise.resolve(outcome), obs, method)
    else {
      this.reply(conn, call, null, outcome, '', req, method.compiledSchema?.serializeResult ?? null)
      if (obs !== null) obs.end(null)
    }
  }

  private refuse(conn: KiteConnection, call: IncomingCall, err: KiteError, obs: CallObservation | null): void {
    this.reply(conn, call, err, null, '')
    if (obs !== null) obs.end(err)
  }

  /**
   * Checks the call's credentials. A KiteClient's own methods take none (it disables
   * authentication on each); kite-server's table (server-dispatch.ts) runs the authenticators.
   */
  protected authenticate(_req: KiteRequest): void | Promise<void> {
    throw kiteError('KITE_ERR_AUTH_MISSING')
  }

  /** A call refers to remembered credentials (kite-server's table puts their key in; here, nothing is remembered). */
  protected referred(_conn: KiteConnection, _auth: KiteAuth): void {}

  /** A call failed after it was answered (kite-server's table counts failed authentications). */
  protected failed(_conn: KiteConnection, _err: unknown): void {}

  /** authenticate → throttle → chain; each stage stays synchronous while the one before was. */
  private run(method: KiteMethod, req: KiteRequest): unknown {
    const authenticated = method.authenticate ? this.authenticate(req) : undefined
    return isThenable(authenticated) ? authenticated.then(() => this.afterAuthentication(method, req)) : this.afterAuthentication(method, req)
  }

  /** Throttle, then the chain: a value when everything ran synchronously, else a promise. */
  private afterAuthentication(method: KiteMethod, req: KiteRequest): unknown {
    if (method.bucket !== null && !method.bucket.take()) throw kiteError('KITE_ERR_REQUEST_LIMIT')
    if (method.schema !== null) {
      // Arguments are checked before any handler runs, pre-handlers included.
      if (method.compiledSchema === null) this.compile(method)
      const invalid = method.compiledSchema!.checkArgs(req.args)
      if (invalid !== null) throw invalid
    }
    const chain = this.chainOf(method)
    if (chain !== PLAIN) {
      const pending = this.runChainWithFinal(method, chain, req)
      return method.compiledSchema === null ? pending : pending.then((r) => this.checkResult(method, req, r))
    }
    const result = method.handler(req)
    if (isThenable(result)) return this.firstMode(method, req, result)
    const answer = (method.handling ?? this.methodHandling) === 'first' && isEmpty(result) ? null : result
    return method.compiledSchema === null ? answer : this.checkResult(method, req, answer)
  }

  private async firstMode(method: KiteMethod, req: KiteRequest, pending: PromiseLike<unknown>): Promise<unknown> {
    const result = await pending
    const answer = (method.handling ?? this.methodHandling) === 'first' && isEmpty(result) ? null : result
    return method.compiledSchema === null ? answer : this.checkResult(method, req, answer)
  }

  /** A result that breaks the method's `result` schema is this kite's bug: the caller gets an error, the log a warning. */
  private checkResult(method: KiteMethod, req: KiteRequest, result: unknown): unknown {
    const problem = method.compiledSchema!.checkResult(result)
    if (problem === null) return result
    req.log.warn({ problem }, 'result does not match the result schema')
    throw kiteError('KITE_ERR_RESULT_INVALID', method.name, problem)
  }

  /** Waits for an asynchronous call, counting it as running until it is answered. */
  private async track(conn: KiteConnection, call: IncomingCall, req: KiteRequest, work: Promise<unknown>, obs: CallObservation | null, method: KiteMethod): Promise<void> {
    conn.inFlight++
    this.running++
    this.active.set(req, call)
    try {
      const result = await work
      if (this.active.delete(req)) {
        this.reply(conn, call, null, result, '', req, method.compiledSchema?.serializeResult ?? null)
        if (obs !== null) obs.end(null)
      } else if (obs !== null) obs.end(kiteError('KITE_ERR_SERVER_CLOSING'))
    } catch (err) {
      if (this.active.delete(req)) this.fail(conn, call, req, err)
      else this.logFailure(req, err)
      if (obs !== null) obs.end(err)
    } finally {
      conn.inFlight--
      if (--this.running === 0 && this.drained !== null) this.drained()
    }
  }

  /** Pre, main and post handlers, then the final handlers with the outcome. */
  private async runChainWithFinal(method: KiteMethod, chain: Chain, req: KiteRequest): Promise<unknown> {
    let outcome: Outcome = { result: null, error: null }
    try {
      outcome.result = await this.runChain(method, chain, req)
    } catch (err) {
      outcome.error = asError(err)
    }
    for (const fn of chain.final) {
      try {
        const replaced = await fn(req, outcome)
        if (replaced !== undefined && replaced !== null) outcome = { result: replaced.result ?? null, error: replaced.error ?? null }
      } catch (err) {
        outcome = { result: null, error: asError(err) }
      }
    }
    if (outcome.error !== null) throw outcome.error
    return outcome.result
  }

  private refuseEnvelope(conn: KiteConnection, call: IncomingCall, problem: string): void {
    conn.warnRemote({ method: call.method, problem }, 'invalid request envelope')
    if (call.responseId !== null) this.reply(conn, call, kiteError('KITE_ERR_ENVELOPE_INVALID', problem), null, '')
    else conn.close(1008, 'invalid request envelope')
  }

  /** The caller's identity is fixed by its first call on the connection (G semantics). */
  private identify(conn: KiteConnection, claimed: KiteIdentity | null): KiteIdentity {
    if (conn.remoteKite !== null) return conn.remoteKite
    conn.remoteKite = claimed ?? emptyKite()
    try {
      this.onFirstRequest(conn)
    } catch (err) {
      conn.log.warn({ err }, 'onFirstRequest hook failed')
    }
    return conn.remoteKite
  }

  /** The method's chain with the kite-wide handlers, rebuilt only after either changed; PLAIN when empty. */
  private chainOf(method: KiteMethod): Chain {
    const cache = method.compiled
    if (cache !== null && cache.methodVersion === method.version && cache.kiteVersion === this.version) return cache.chain
    const pre = [...method.pre, ...this.pre]
    const post = [...method.post, ...this.post]
    const final = [...method.final, ...this.final]
    const chain = pre.length + post.length + final.length === 0 ? PLAIN : { pre, post, final }
    method.compiled = { methodVersion: method.version, kiteVersion: this.version, chain }
    return chain
  }

  private async runChain(method: KiteMethod, chain: Chain, req: KiteRequest): Promise<unknown> {
    const mode = method.handling ?? this.methodHandling
    if (chain.pre.length === 0 && chain.post.length === 0) {
      const result = await method.handler(req)
      return mode === 'first' && isEmpty(result) ? null : result
    }
    let first: unknown = null
    let latest: unknown = null
    const step = async (fn: KiteHandler): Promise<unknown> => {
      const value = await fn(req)
      if (isEmpty(first)) first = value
      latest = value
      return value
    }
    for (const fn of chain.pre) await step(fn)
    const main = await step(method.handler)
    for (const fn of chain.post) await step(fn)
    if (mode === 'first') return isEmpty(first) ? null : first
    if (mode === 'latest') return latest ?? null
    return main
  }

  protected reply(conn: KiteConnection, call: IncomingCall, error: unknown, result: unknown, requestId: string, req?: KiteRequest, serialize: ((r: unknown) => string) | null = null): void {
    if (error === null) conn.successCount++
    if (req !== undefined && req.startedAt !== 0) logCall(req, error)
    if (call.responseId === null) return
    conn.respond(call.responseId, error, result, requestId, serialize, req !== undefined && req.remembered)
  }

  /** Answers a failed call. */
  private fail(conn: KiteConnection, call: IncomingCall, req: KiteRequest, err: unknown): void {
    this.logFailure(req, err)
    this.reply(conn, call, err, null, req.id, req)
    this.failed(conn, err)
  }

  private logFailure(req: KiteRequest, err: unknown): void {
    if (!(err instanceof KiteError)) req.log.warn({ err }, 'handler failed')
    else if (err.type === 'authenticationError') req.connection.warnRemote({ method: req.method, reason: err.message }, 'authentication failed')
    else req.log.debug({ type: err.type, message: err.message }, 'call failed')
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

function isEmpty(value: unknown): boolean {
  return value === null || value === undefined
}
