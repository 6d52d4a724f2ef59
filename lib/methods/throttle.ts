import { usageError } from '../errors.js'
/** A clock in milliseconds; injectable so that tests need not sleep. */
export type Clock = () => number

/** Token bucket options: `capacity` calls at once, one more every `interval` ms. */
export interface ThrottleOptions {
  /** Milliseconds to add one token. */
  interval: number
  /** Most tokens the bucket holds; it starts full. */
  capacity: number
}

/** A token bucket (G `Method.Throttle`): one per method, shared by every caller. */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    private readonly options: ThrottleOptions,
    private readonly clock: Clock = Date.now,
  ) {
    if (!(options.interval > 0) || !Number.isInteger(options.capacity) || options.capacity < 1) {
      throw usageError('KITE_ERR_METHOD_SETUP', 'throttle needs interval > 0 and an integer capacity >= 1')
    }
    this.tokens = options.capacity
    this.last = clock()
  }

  /** Takes a token; false when the bucket is empty. */
  take(): boolean {
    const now = this.clock()
    const refill = Math.floor((now - this.last) / this.options.interval)
    if (refill > 0) {
      this.tokens = Math.min(this.options.capacity, this.tokens + refill)
      this.last += refill * this.options.interval
    }
    if (this.tokens < 1) return false
    if (this.tokens === this.options.capacity) this.last = now
    this.tokens--
    return true
  }
}
