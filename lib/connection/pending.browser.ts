import { kiteError, type KiteError } from '../errors.js'
import { PendingCall, type Timers } from './pending-call.js'

export { PendingCall, type Timers }

/**
 * The browser's side of `pending.ts` (see there), smaller for the bundle: a
 * Map of calls and a timer per call. A page makes few calls at a time; the
 * Node version keeps its array and sweep for tens of thousands per second.
 */
export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as number),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as number),
}

export class PendingCalls {
  private readonly calls = new Map<number, PendingCall>()

  constructor(private readonly clock: Timers = systemTimers) {}

  add(id: number, call: PendingCall): void {
    call.id = id
    this.calls.set(id, call)
    if (call.timeout > 0) {
      call.timer = this.clock.setTimeout(() => {
        if (this.take(id) === call) call.reject(kiteError('KITE_ERR_CALL_TIMEOUT', call.method, call.timeout))
      }, call.timeout)
    }
  }

  take(id: number): PendingCall | undefined {
    const call = this.calls.get(id)
    if (call === undefined) return undefined
    this.calls.delete(id)
    if (call.timer !== null) this.clock.clearTimeout(call.timer)
    return call
  }

  failAll(err: () => KiteError): void {
    const calls = [...this.calls.values()]
    for (const call of calls) this.take(call.id)?.reject(err())
  }

  get size(): number {
    return this.calls.size
  }
}
