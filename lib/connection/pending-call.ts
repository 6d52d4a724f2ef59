import type { KiteError } from '../errors.js'
import type { ClientCallObservation } from '../observe/observer.js'

/** The timers of the pending table; tests give fake ones and fire them themselves. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
  setInterval(fn: () => void, ms: number): unknown
  clearInterval(handle: unknown): void
}

/** A call made from this side, waiting for its answer. */
export class PendingCall {
  /** The response callback id, once in the table. */
  id = -1
  /** A precise timer, for short timeouts; null otherwise. */
  timer: unknown = null
  /** The sweep at which a long timeout expires; 0 for none. */
  deadline = 0

  constructor(
    readonly method: string,
    readonly timeout: number,
    private readonly onValue: (value: unknown) => void,
    private readonly onError: (err: KiteError) => void,
    /** What watches the call (metrics, a span): told once when it ends. */
    readonly observation: ClientCallObservation | null = null,
  ) {}

  /** The call answered with `value`. */
  resolve(value: unknown): void {
    if (this.observation !== null) this.observation.end(null)
    this.onValue(value)
  }

  /** The call failed. */
  reject(err: KiteError): void {
    if (this.observation !== null) this.observation.end(err)
    this.onError(err)
  }
}
