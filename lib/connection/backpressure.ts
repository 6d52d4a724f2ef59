import { unref } from '../platform.js'
import { checkOptions, type OptionChecker } from '../options.js'
/** Limits on what one connection may leave unsent. */
export interface BackpressureOptions {
  /** Unsent bytes of one connection above which reading from that peer pauses. */
  maxBufferedBytes: number
  /** How long the unsent bytes may stay above the limit before the connection is closed, in ms. */
  graceMs: number
}

export const defaultBackpressure: Readonly<BackpressureOptions> = Object.freeze({
  maxBufferedBytes: 4 * 1024 * 1024,
  graceMs: 10_000,
})

/** What a gate does to its transport. */
export interface GateHooks {
  /** Bytes waiting to be sent right now. */
  queued(): number
  /** Stop reading from the peer. */
  pause(): void
  /** Read from the peer again. */
  resume(): void
  /** The queue stayed above the limit for the whole grace period: close the connection. */
  overflow(): void
}

/** While paused, how often the queue is looked at (transports have no portable "drained" event). */
const POLL_MS = 50

/**
 * Write backpressure for one connection. A transport calls `check()` after
 * it writes; above `maxBufferedBytes` the gate pauses reading from the peer
 * (so a peer that does not read cannot make us produce more answers), resumes
 * it once the queue is back under half the limit, and reports `overflow` when
 * the queue stayed above the limit for `graceMs`.
 *
 * The hot path costs one comparison per write; timers run only while paused.
 */
export class WriteGate {
  private poller: NodeJS.Timeout | null = null
  private overSince = 0
  private done = false

  constructor(
    private readonly options: BackpressureOptions,
    private readonly hooks: GateHooks,
    private readonly now: () => number = Date.now,
  ) {}

  /** True while reading from the peer is paused. */
  get paused(): boolean {
    return this.poller !== null
  }

  /** Call after writing: pauses the peer when its unsent bytes passed the limit. */
  check(): void {
    if (this.poller !== null || this.done) return
    if (this.hooks.queued() <= this.options.maxBufferedBytes) return
    this.overSince = this.now()
    this.hooks.pause()
    this.poller = setInterval(this.poll, POLL_MS)
    unref(this.poller)
  }

  private readonly poll = (): void => {
    const queued = this.hooks.queued()
    if (queued <= this.options.maxBufferedBytes / 2) {
      this.stopPolling()
      this.hooks.resume()
      return
    }
    if (queued <= this.options.maxBufferedBytes) {
      this.overSince = this.now()
      return
    }
    if (this.now() - this.overSince >= this.options.graceMs) {
      this.dispose()
      this.hooks.overflow()
    }
  }

  private stopPolling(): void {
    if (this.poller !== null) clearInterval(this.poller)
    this.poller = null
  }

  /** The connection is gone: no more timers. */
  dispose(): void {
    this.done = true
    this.stopPolling()
  }
}

/** Checks backpressure options given by a user; `who` names the plugin or class in the error. */
export function resolveBackpressure(who: string, o: Partial<BackpressureOptions> = {}): BackpressureOptions {
  const c: OptionChecker = checkOptions(who, {})
  return {
    maxBufferedBytes: c.numberValue('maxBufferedBytes', o.maxBufferedBytes, defaultBackpressure.maxBufferedBytes, { integer: true, min: 1024 }),
    graceMs: c.numberValue('backpressureGraceMs', o.graceMs, defaultBackpressure.graceMs),
  }
}
