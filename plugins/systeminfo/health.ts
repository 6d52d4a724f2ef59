import type { Clock } from '../../lib/methods/throttle.js'
import type { ReadyCheck } from './options.js'

/** Where the app is in its life: before `ready()`, serving, or closing. */
export type LifecyclePhase = 'starting' | 'ready' | 'draining'

/** What the readiness probe reports. */
export type ReadinessState = LifecyclePhase | 'not-ready'

export interface ReadinessOptions {
  check: ReadyCheck | null
  timeoutMs: number
  /** Also counts as draining (e.g. the kite began its shutdown before our preClose ran). */
  closing?: () => boolean
  /** Told when the check throws or rejects. */
  onCheckError?: (err: unknown) => void
}

/** Readiness: the app's lifecycle phase, then an optional check. */
export class Readiness {
  private phaseValue: LifecyclePhase = 'starting'
  private check: ReadyCheck | null

  constructor(private readonly options: ReadinessOptions) {
    this.check = options.check
  }

  /** The lifecycle phase (the readiness check is not applied here). */
  get phase(): LifecyclePhase {
    if (this.phaseValue === 'ready' && this.options.closing?.() === true) return 'draining'
    return this.phaseValue
  }

  markReady(): void {
    if (this.phaseValue === 'starting') this.phaseValue = 'ready'
  }

  markDraining(): void {
    this.phaseValue = 'draining'
  }

  /** True when a readiness check is set. */
  get hasCheck(): boolean {
    return this.check !== null
  }

  setCheck(fn: ReadyCheck | null): void {
    if (fn !== null && typeof fn !== 'function') throw new TypeError('setReadyCheck needs a function or null')
    this.check = fn
  }

  /** The phase, or `not-ready` when the app is up but the check does not answer `true` in time. */
  async evaluate(): Promise<ReadinessState> {
    const phase = this.phase
    if (phase !== 'ready' || this.check === null) return phase
    return (await this.runCheck(this.check)) ? 'ready' : 'not-ready'
  }

  private async runCheck(check: ReadyCheck): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    try {
      const result = check()
      if (!isThenable(result)) return result === true
      const timeout = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), this.options.timeoutMs)
      })
      return (await Promise.race([result, timeout])) === true
    } catch (err) {
      this.options.onCheckError?.(err)
      return false
    } finally {
      if (timer !== undefined) clearTimeout(timer)
    }
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function'
}

export interface EventLoopMonitorOptions {
  /** Sampling interval in ms. */
  intervalMs: number
  /** How long a measured stall keeps being reported, in ms. */
  windowMs: number
  /** Monotonic clock in ms. */
  clock: Clock
}

/**
 * Event-loop delay by timer drift: an unref'd interval notes how late each
 * tick comes. `delayMs()` is the larger of the stall going on right now (time
 * since the last tick beyond the interval) and the worst delay measured within
 * the last `windowMs`; so a stall shows both while it lasts and after it.
 */
export class EventLoopMonitor {
  private timer: NodeJS.Timeout | null = null
  private lastTick: number | null = null
  private peak = 0
  private peakAt = 0

  constructor(private readonly options: EventLoopMonitorOptions) {}

  /** True while the sampler's interval is running. */
  get running(): boolean {
    return this.timer !== null
  }

  start(): void {
    if (this.timer !== null) return
    this.lastTick = this.options.clock()
    this.timer = setInterval(() => this.sample(), this.options.intervalMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.lastTick = null
    this.peak = 0
  }

  /** Takes one sample (the interval calls this; tests may call it with an injected clock). */
  sample(): void {
    const now = this.options.clock()
    if (this.lastTick === null) {
      this.lastTick = now
      return
    }
    const delay = Math.max(0, now - this.lastTick - this.options.intervalMs)
    this.lastTick = now
    if (delay >= this.peak || now - this.peakAt > this.options.windowMs) {
      this.peak = delay
      this.peakAt = now
    }
  }

  /** The event-loop delay in ms, as described on the class. 0 before the first sample. */
  delayMs(): number {
    if (this.lastTick === null) return 0
    const now = this.options.clock()
    const ongoing = Math.max(0, now - this.lastTick - this.options.intervalMs)
    const recent = now - this.peakAt <= this.options.windowMs ? this.peak : 0
    return Math.max(ongoing, recent)
  }
}
