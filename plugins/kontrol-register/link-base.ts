import { EventEmitter } from 'node:events'
import { Backoff, type BackoffOptions } from '../../lib/client/backoff.js'
import type { RegisterResult } from '../../lib/protocol/kontrol.js'

/** Events: `registered` (result), `lost` (reason). */
export interface LinkEvents {
  registered: [result: RegisterResult]
  /** Connected to Kontrol (before registering; kites can be looked up from here on). */
  connected: []
  lost: [reason: string]
}

/** What every link (to Kontrol, to a proxy) keeps to start over: its backoff and one timer, none once closed. */
export abstract class Retrying<E extends Record<keyof E, unknown[]>> extends EventEmitter<E> {
  protected closed = false
  protected timer: NodeJS.Timeout | null = null
  protected readonly backoff: Backoff

  constructor(backoff: BackoffOptions | undefined) {
    super()
    this.backoff = new Backoff({ initialMs: 500, maxMs: 30000, ...backoff })
  }

  /** Runs `fn` after `ms` (replacing what was scheduled), unless closed. */
  protected schedule(ms: number, fn: () => Promise<void>): void {
    if (this.closed) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      void fn()
    }, ms)
    this.timer.unref()
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }
}

/** What every link to Kontrol keeps: the URLs it rotates through and its kite.key, besides its retries. */
export abstract class LinkBase extends Retrying<LinkEvents> {
  protected kiteKey: string
  private attempt = 0

  constructor(
    protected readonly base: { urls: string[]; kiteKey: string; backoff?: BackoffOptions },
    protected readonly registerURL: () => string,
  ) {
    super(base.backoff)
    this.kiteKey = base.kiteKey
  }

  /** Starts registering (when the server listens). Nothing is registered while the URL is empty. */
  abstract start(): void

  /** Registers again with the current URL (it changed: a proxy gave us a new one). */
  abstract reregister(): void

  /** The kite.key in use (Kontrol may have re-issued it). */
  get currentKiteKey(): string {
    return this.kiteKey
  }

  /** Replaces the kite.key sent to Kontrol (after Kontrol re-issued it). */
  setKiteKey(key: string): void {
    this.kiteKey = key
  }

  /** The next Kontrol URL to try, in turn. */
  protected nextURL(): string {
    return this.base.urls[this.attempt++ % this.base.urls.length]!
  }
}
