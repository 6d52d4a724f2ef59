import type { Clock } from '../../lib/methods/throttle.js'

interface Entry {
  username: string | null
  error: string | null
  until: number
}

/**
 * Remembers what verifying a credential gave, until it expires, so that a
 * connection pays for one RSA verification per distinct token, not per call.
 * Failures are remembered briefly too, so that replaying a bad token costs
 * no RSA work. Bounded: the oldest entries go first.
 */
export class VerificationCache {
  private readonly entries = new Map<string, Entry>()
  private version = -1

  constructor(
    private readonly maxEntries: number,
    private readonly clock: Clock,
  ) {}

  /** The cached outcome, or undefined; `trustVersion` drops everything when the trusted keys changed. */
  get(key: string, trustVersion: number): Entry | undefined {
    if (trustVersion !== this.version) {
      this.entries.clear()
      this.version = trustVersion
      return undefined
    }
    const e = this.entries.get(key)
    if (e === undefined) return undefined
    if (e.until <= this.clock()) {
      this.entries.delete(key)
      return undefined
    }
    return e
  }

  set(key: string, entry: Entry): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next()
      if (oldest.done !== true) this.entries.delete(oldest.value)
    }
    this.entries.set(key, entry)
  }

  get size(): number {
    return this.entries.size
  }
}
