/** Options of the per-kite circuit breaker. */
export interface BreakerOptions {
  /** Failures within `windowMs` that open the circuit. Default 5. */
  failures?: number
  /** The window failures are counted in, ms. Default 10000. */
  windowMs?: number
  /** How long an open circuit skips its kite before one probe call, ms. Default 5000. */
  coolDownMs?: number
}

/** `closed`: calls go through; `open`: the kite is skipped; `half-open`: one probe call is on its way. */
export type BreakerState = 'closed' | 'open' | 'half-open'

/**
 * A circuit breaker for one kite: `failures` failures within `windowMs` open
 * it; after `coolDownMs` one probe is allowed (half-open); the probe's
 * success closes it, its failure opens it again for another cool-down.
 */
export class Breaker {
  state: BreakerState = 'closed'
  /** When the circuit last opened (clock ms), or 0. */
  openedAt = 0
  /** Times the circuit opened. */
  opened = 0
  private readonly times: number[] = []
  private readonly max: number
  private readonly windowMs: number
  private readonly coolDownMs: number

  constructor(
    o: BreakerOptions,
    private readonly clock: () => number,
    private readonly onChange: (state: BreakerState) => void = () => {},
  ) {
    this.max = positive(o.failures ?? 5, 'breaker.failures')
    this.windowMs = positive(o.windowMs ?? 10000, 'breaker.windowMs')
    this.coolDownMs = positive(o.coolDownMs ?? 5000, 'breaker.coolDownMs')
  }

  /** True when calls may go to the kite (closed). */
  get closed(): boolean {
    return this.state === 'closed'
  }

  /** True when the circuit is open and its cool-down has passed: time for a probe. */
  probeDue(): boolean {
    return this.state === 'open' && this.clock() - this.openedAt >= this.coolDownMs
  }

  /** Failures counted in the current window. */
  get recentFailures(): number {
    this.forget(this.clock())
    return this.times.length
  }

  /** Marks the probe as started (open → half-open). */
  probing(): void {
    if (this.state === 'open') this.set('half-open')
  }

  success(): void {
    if (this.state === 'half-open') {
      this.times.length = 0
      this.set('closed')
    }
  }

  failure(): void {
    const now = this.clock()
    if (this.state === 'half-open') {
      this.open(now)
      return
    }
    if (this.state === 'open') return
    this.times.push(now)
    this.forget(now)
    if (this.times.length >= this.max) this.open(now)
  }

  private open(now: number): void {
    this.times.length = 0
    this.openedAt = now
    this.opened++
    this.set('open')
  }

  private forget(now: number): void {
    const from = now - this.windowMs
    let drop = 0
    while (drop < this.times.length && this.times[drop]! < from) drop++
    if (drop > 0) this.times.splice(0, drop)
  }

  private set(state: BreakerState): void {
    if (this.state === state) return
    this.state = state
    this.onChange(state)
  }
}

function positive(v: number, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new TypeError(`${name} must be a positive number`)
  return v
}
