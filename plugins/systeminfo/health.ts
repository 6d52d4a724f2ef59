import { usageError } from '../../lib/errors.js'
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
    if (fn !== null && typeof fn !== 'function') throw usageError('KITE_ERR_METHOD_SETUP', 'setReadyCheck needs a function or null')
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
