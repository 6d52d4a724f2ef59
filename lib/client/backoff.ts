/** Exponential backoff with jitter (G `cenkalti/backoff`: 500 ms × 1.5 up to 60 s, ±50 %). */
export interface BackoffOptions {
  /** First delay in ms. Default 500. */
  initialMs?: number
  /** Growth per attempt. Default 1.5. */
  multiplier?: number
  /** Largest delay before jitter, in ms. Default 60000. */
  maxMs?: number
  /** Jitter: each delay is drawn from ±this fraction. Default 0.5. */
  randomization?: number
  /** Source of randomness in [0, 1); injectable for tests. */
  random?: () => number
}

export class Backoff {
  private current: number
  private readonly initial: number
  private readonly multiplier: number
  private readonly max: number
  private readonly randomization: number
  private readonly random: () => number

  constructor(o: BackoffOptions = {}) {
    this.initial = o.initialMs ?? 500
    this.multiplier = o.multiplier ?? 1.5
    this.max = o.maxMs ?? 60000
    this.randomization = o.randomization ?? 0.5
    this.random = o.random ?? Math.random
    if (!(this.initial > 0) || !(this.multiplier >= 1) || !(this.max >= this.initial) || !(this.randomization >= 0 && this.randomization < 1)) {
      throw new TypeError('backoff needs initialMs > 0, multiplier >= 1, maxMs >= initialMs and 0 <= randomization < 1')
    }
    this.current = this.initial
  }

  /** The next delay in ms; each call grows the base until it reaches `maxMs`. */
  next(): number {
    const base = this.current
    this.current = Math.min(this.max, this.current * this.multiplier)
    const spread = base * this.randomization
    return Math.round(base - spread + this.random() * 2 * spread)
  }

  /** Back to the first delay (after a successful connect). */
  reset(): void {
    this.current = this.initial
  }
}
