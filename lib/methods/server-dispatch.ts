import { errorCode, KiteError, kiteError, usageError } from '../errors.js'
import type { KiteConnection } from '../connection/connection.js'
import type { KiteAuth } from '../protocol/envelope.js'
import type { KiteRequest } from './request.js'
import { isThenable, MethodTable, type Authenticator, type AuthResult, type MethodTableOptions } from './dispatch.js'

export interface ServerMethodTableOptions extends MethodTableOptions {
  /** Failed authentications one connection may have within `authFailureWindowMs` before it is closed (1008). Default 10; 0 never closes. */
  maxAuthFailures?: number
  /** The window of `maxAuthFailures`, in ms. Default 60000. */
  authFailureWindowMs?: number
}

/**
 * A kite's method table: the MethodTable that KiteClients also use, with what only a
 * server does: authenticators by `authentication.type`, remembered credentials put
 * into the calls that refer to them, a connection closed after too many failed
 * authentications, and draining on close. Apart so that the browser bundle, whose
 * KiteClient takes no credentials for its own methods, does not carry it.
 */
export class ServerMethodTable extends MethodTable {
  readonly authenticators = new Map<string, Authenticator>()
  private readonly maxAuthFailures: number
  private readonly authFailureWindowMs: number

  constructor(options: ServerMethodTableOptions = {}) {
    super(options)
    this.maxAuthFailures = options.maxAuthFailures ?? 10
    this.authFailureWindowMs = options.authFailureWindowMs ?? 60_000
    if (!Number.isInteger(this.maxAuthFailures) || this.maxAuthFailures < 0) throw usageError('KITE_ERR_METHOD_SETUP', 'maxAuthFailures must be a non-negative integer')
    if (!(this.authFailureWindowMs > 0)) throw usageError('KITE_ERR_METHOD_SETUP', 'authFailureWindowMs must be a positive number')
  }

  /** Registers the authenticator for one `authentication.type`. */
  addAuthenticator(type: string, fn: Authenticator): void {
    if (typeof type !== 'string' || type === '' || typeof fn !== 'function') throw usageError('KITE_ERR_METHOD_SETUP', 'addAuthenticator(type, fn)')
    this.authenticators.set(type, fn)
  }

  /** Stops taking calls (new ones get an error) and resolves once running calls end or `timeoutMs` passes. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.accepting = false
    if (this.running === 0) return true
    let timer: NodeJS.Timeout | undefined
    const done = await Promise.race([
      new Promise<boolean>((resolve) => (this.drained = () => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ])
    clearTimeout(timer)
    return done
  }

  /** Answers every call still running with an error (their handlers' later results are dropped). */
  abortRunning(): number {
    const count = this.active.size
    for (const [req, call] of this.active) {
      this.reply(req.connection, call, kiteError('KITE_ERR_SERVER_CLOSING'), null, req.id)
    }
    this.active.clear()
    return count
  }

  /** A reference to remembered credentials: every handler and authenticator sees the key itself. */
  protected override referred(conn: KiteConnection, auth: KiteAuth): void {
    const r = conn.rememberedAuth
    if (r !== null && r.type === auth.type) auth.key = r.key
  }

  /** A connection failing authentication too often is closed after the answer. */
  protected override failed(conn: KiteConnection, err: unknown): void {
    if (!(err instanceof KiteError) || err.type !== 'authenticationError' || this.maxAuthFailures === 0) return
    const now = this.clock()
    if (now - conn.authWindowStart >= this.authFailureWindowMs) {
      conn.authWindowStart = now
      conn.authFailures = 0
    }
    if (++conn.authFailures < this.maxAuthFailures) return
    conn.warnRemote({ failures: conn.authFailures, windowMs: this.authFailureWindowMs }, 'closing connection: too many failed authentications')
    conn.close(1008, 'too many failed authentications')
  }

  /**
   * Runs the authenticator of the call's `authentication.type`. Synchronous
   * when the authenticator is (kite-auth answers from its cache without a
   * promise), so an authenticated call need not cost a turn of the event loop.
   */
  protected override authenticate(req: KiteRequest): void | Promise<void> {
    const auth = req.authentication
    if (auth === null) throw kiteError('KITE_ERR_AUTH_MISSING')
    const authenticator = this.authenticators.get(auth.type)
    if (authenticator === undefined) throw kiteError('KITE_ERR_AUTH_UNKNOWN_TYPE', auth.type)
    const failed = (err: unknown): never => {
      // An authenticator that refuses an expired token says so by code: clients renew on it.
      if (errorCode(err) === 'KITE_ERR_AUTH_TOKEN_EXPIRED') throw kiteError('KITE_ERR_AUTH_TOKEN_EXPIRED', auth.type)
      throw kiteError('KITE_ERR_AUTH_FAILED', auth.type, err instanceof Error ? err.message : String(err))
    }
    let result: AuthResult | Promise<AuthResult>
    try {
      result = authenticator({ authentication: auth, kite: req.kite, method: req.method, connection: req.connection })
    } catch (err) {
      return failed(err)
    }
    if (isThenable(result)) return Promise.resolve(result).then((r) => this.applyAuth(req, auth.type, r), failed)
    this.applyAuth(req, auth.type, result)
  }

  private applyAuth(req: KiteRequest, type: string, result: AuthResult): void {
    if (result === null || typeof result !== 'object' || typeof result.username !== 'string' || result.username === '') {
      throw kiteError('KITE_ERR_AUTH_FAILED', type, 'authenticator gave no username')
    }
    req.username = result.username
    req.connection.authenticated = true
    // The caller asked, and the connection remembers: the answer says the caller may send a reference from now on.
    const auth = req.authentication!
    if (result.remember === true && auth.remember === true && auth.remembered !== true) req.remembered = true
    if (req.connection.remoteKite !== null) req.connection.remoteKite.username = result.username
  }
}
