import type { Logger } from 'pino'
import type { KiteConnection } from '../connection/connection.js'
import type { KiteAuth } from '../protocol/envelope.js'
import type { KiteIdentity } from '../protocol/kite.js'
import { randomId16 } from '../platform.js'

/** 16 random hex characters (G request ids). */
export const newRequestId: () => string = randomId16

/**
 * One incoming call, handed to every handler of its chain. The id and the
 * child logger are made on first use, so a call that never logs never pays
 * for them.
 */
export class KiteRequest<Args = unknown[]> {
  /** Data shared along the handler chain of this call. */
  context: Record<string, unknown> = {}
  /** The caller's username: the authenticated one, or the claimed one for unauthenticated methods. */
  username: string
  /** performance.now() when the call arrived, when the call log is on (0 otherwise). */
  startedAt = 0
  /** The call passed with credentials the connection now remembers: its answer says so (`authRemembered`). */
  remembered = false
  private idValue: string | null = null
  private logValue: Logger | null = null

  constructor(
    /** The method called. */
    readonly method: string,
    /** The method's arguments (`withArgs`); callbacks among them are callable. Typed from the method's `args` schema. */
    readonly args: Args,
    /** The caller's identity as the connection knows it. */
    readonly kite: KiteIdentity,
    /** The credentials the caller sent, or null. */
    readonly authentication: KiteAuth | null,
    /** The connection the call came on: `req.connection.tell(...)` calls the caller back. */
    readonly connection: KiteConnection,
  ) {
    this.username = kite.username
  }

  /** 16 hex characters identifying this call in errors and logs. */
  get id(): string {
    this.idValue ??= newRequestId()
    return this.idValue
  }

  /** A logger bound to this call. */
  get log(): Logger {
    this.logValue ??= this.connection.log.child({ reqId: this.id, method: this.method })
    return this.logValue
  }

  /** Aborted when the caller disconnects. */
  get signal(): AbortSignal {
    return this.connection.signal
  }
}
