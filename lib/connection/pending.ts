import { unref } from '../platform.js'
import { kiteError, type KiteError } from '../errors.js'
import { PendingCall, type Timers } from './pending-call.js'

export { PendingCall, type Timers }

/** The real clock. The sweep is a background timer (it does not keep a process alive); a call's own timer is not. */
export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setInterval: (fn, ms) => {
    const timer = setInterval(fn, ms)
    unref(timer)
    return timer
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
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

/** Most slots of the table; past that, a call pushed out of its slot by a newer one waits in a Map. */
const MAX_SLOTS = 4096

/**
 * The calls one connection made and still waits on, by response callback id:
 * each leaves the table exactly once, answered (`take`), timed out (rejected
 * with `timeout`), or failed when the connection ends (`failAll`).
 *
 * Ids grow by one per call (and per callback handed over), so the calls in
 * flight sit in a window of ids: an array indexed by `id & mask` holds them
 * without a hash map's costs per call. A slot still taken when a newer id
 * lands on it doubles the array; at MAX_SLOTS the older call moves to an
 * overflow Map (a call waiting while thousands of newer ones come and go).
 */
export class PendingCalls {
  private slots: Array<PendingCall | undefined> = new Array<PendingCall | undefined>(64).fill(undefined)
  private mask = 63
  private readonly overflow = new Map<number, PendingCall>()
  private count = 0
  private sweep: unknown = null
  /** Sweeps run so far. */
  private sweeps = 0

  constructor(private readonly clock: Timers = systemTimers) {}

  /** Waits for the answer to call `id`; `timeout` ms (0: until failAll). */
  add(id: number, call: PendingCall): void {
    call.id = id
    this.place(call)
    this.count++
    const timeout = call.timeout
    if (timeout >= SWEEP_FROM_MS) {
      // The current sweep period has already begun: one more sweep makes sure the full timeout passes.
      call.deadline = this.sweeps + Math.ceil(timeout / SWEEP_MS) + 1
      if (this.sweep === null) this.sweep = this.clock.setInterval(this.sweepOnce, SWEEP_MS)
    } else if (timeout > 0) {
      call.timer = this.clock.setTimeout(() => {
        if (this.remove(id) === call) call.reject(kiteError('KITE_ERR_CALL_TIMEOUT', call.method, timeout))
      }, timeout)
    }
  }

  /** Removes and returns call `id` (its answer arrived, or it could not be sent); undefined when it is not waiting. */
  take(id: number): PendingCall | undefined {
    const call = this.remove(id)
    if (call !== undefined && call.timer !== null) this.clock.clearTimeout(call.timer)
    return call
  }

  private place(call: PendingCall): void {
    const i = call.id & this.mask
    const there = this.slots[i]
    if (there !== undefined) {
      if (this.slots.length < MAX_SLOTS) {
        this.grow()
        this.place(call)
        return
      }
      this.overflow.set(there.id, there)
    }
    this.slots[i] = call
  }

  /** Twice the slots; calls in distinct slots stay in distinct slots (their ids differ in the low bits). */
  private grow(): void {
    const old = this.slots
    this.slots = new Array<PendingCall | undefined>(old.length * 2).fill(undefined)
    this.mask = this.slots.length - 1
    for (const call of old) if (call !== undefined) this.slots[call.id & this.mask] = call
  }

  private remove(id: number): PendingCall | undefined {
    const i = id & this.mask
    let call = this.slots[i]
    if (call !== undefined && call.id === id) this.slots[i] = undefined
    else {
      call = this.overflow.get(id)
      if (call === undefined) return undefined
      this.overflow.delete(id)
    }
    this.count--
    return call
  }

  /** Every waiting call (a copy: callers may remove while they go). */
  private all(): PendingCall[] {
    const calls: PendingCall[] = []
    for (const call of this.slots) if (call !== undefined) calls.push(call)
    for (const call of this.overflow.values()) calls.push(call)
    return calls
  }

  /** Fails every waiting call with `err` (a fresh one per call) and stops the sweep. */
  failAll(err: () => KiteError): void {
    this.stopSweep()
    const calls = this.all()
    this.slots.fill(undefined)
    this.overflow.clear()
    this.count = 0
    for (const call of calls) {
      if (call.timer !== null) this.clock.clearTimeout(call.timer)
      call.reject(err())
    }
  }

  get size(): number {
    return this.count
  }

  private readonly sweepOnce = (): void => {
    const now = ++this.sweeps
    let waiting = false
    for (const call of this.all()) {
      if (call.deadline === 0) continue
      if (call.deadline <= now) {
        this.remove(call.id)
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
