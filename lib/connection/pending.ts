import { unref } from '../platform.js'
import { kiteError, type KiteError } from '../errors.js'

/** The timers of the pending table; tests give fake ones and fire them themselves. */
export interface PendingClock {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
  setInterval(fn: () => void, ms: number): unknown
  clearInterval(handle: unknown): void
}

/** The real clock. The sweep is a background timer (it does not keep a process alive); a call's own timer is not. */
export const systemClock: PendingClock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setInterval: (fn, ms) => {
    const timer = setInterval(fn, ms)
    unref(timer)
    return timer
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
}

/** A call made from this side, waiting for its answer. */
export class PendingCall {
  /** A precise timer, for short timeouts; null otherwise. */
  timer: unknown = null
  /** The sweep at which a long timeout expires; 0 for none. */
  deadline = 0

  constructor(
    readonly method: string,
    readonly timeout: number,
    readonly resolve: (value: unknown) => void,
    readonly reject: (err: KiteError) => void,
  ) {}
}

/**
 * Timeouts from this long up are checked by one sweep every SWEEP_MS instead
 * of a timer per call: a Node timer costs about as much as the rest of a
 * call, and a default 15 s timeout does not need millisecond precision.
 * Shorter timeouts keep their own timer. Deadlines count sweeps, so a call
 * reads no clock: one that waits `timeout` ms fails after between `timeout`
 * and `timeout` + 2 × SWEEP_MS, never before (later when the event loop stalls).
 */
export const SWEEP_FROM_MS = 2000
export const SWEEP_MS = 250

/**
 * The calls one connection made and still waits on, by response callback id:
 * each leaves the table exactly once, answered (`take`), timed out (rejected
 * with `timeout`), or failed when the connection ends (`failAll`).
 */
export class PendingCalls {
  private readonly calls = new Map<number, PendingCall>()
  private sweep: unknown = null
  /** Sweeps run so far. */
  private sweeps = 0

  constructor(private readonly clock: PendingClock = systemClock) {}

  /** Waits for the answer to call `id`; `timeout` ms (0: until failAll). */
  add(id: number, call: PendingCall): void {
    this.calls.set(id, call)
    const timeout = call.timeout
    if (timeout >= SWEEP_FROM_MS) {
      // The current sweep period has already begun: one more sweep makes sure the full timeout passes.
      call.deadline = this.sweeps + Math.ceil(timeout / SWEEP_MS) + 1
      if (this.sweep === null) this.sweep = this.clock.setInterval(this.sweepOnce, SWEEP_MS)
    } else if (timeout > 0) {
      call.timer = this.clock.setTimeout(() => {
        if (this.calls.get(id) !== call) return
        this.calls.delete(id)
        call.reject(kiteError('KITE_ERR_CALL_TIMEOUT', call.method, timeout))
      }, timeout)
    }
  }

  /** Removes and returns call `id` (its answer arrived, or it could not be sent); undefined when it is not waiting. */
  take(id: number): PendingCall | undefined {
    const call = this.calls.get(id)
    if (call === undefined) return undefined
    this.calls.delete(id)
    if (call.timer !== null) this.clock.clearTimeout(call.timer)
    return call
  }

  /** Fails every waiting call with `err` (a fresh one per call) and stops the sweep. */
  failAll(err: () => KiteError): void {
    this.stopSweep()
    const calls = [...this.calls.values()]
    this.calls.clear()
    for (const call of calls) {
      if (call.timer !== null) this.clock.clearTimeout(call.timer)
      call.reject(err())
    }
  }

  get size(): number {
    return this.calls.size
  }

  private readonly sweepOnce = (): void => {
    const now = ++this.sweeps
    let waiting = false
    for (const [id, call] of this.calls) {
      if (call.deadline === 0) continue
      if (call.deadline <= now) {
        this.calls.delete(id)
        call.reject(kiteError('KITE_ERR_CALL_TIMEOUT', call.method, call.timeout))
      } else waiting = true
    }
    if (!waiting) this.stopSweep()
  }

  private stopSweep(): void {
    if (this.sweep !== null) this.clock.clearInterval(this.sweep)
    this.sweep = null
  }
}
