import { BoundedCache } from '../../lib/cache.js'
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
 * no RSA work. Bounded (the shared LRU of lib/cache.ts): the least recently
 * used entries go first.
 */
export class VerificationCache {
  private readonly entries: BoundedCache<string, Entry>
  private version = -1

  constructor(maxEntries: number, clock: Clock) {
    this.entries = new BoundedCache({ maxEntries, clock })
  }

  /** The cached outcome, or undefined; `trustVersion` drops everything when the trusted keys changed. */
  get(key: string, trustVersion: number): Entry | undefined {
    if (trustVersion !== this.version) {
      this.entries.clear()
      this.version = trustVersion
      return undefined
    }
    return this.entries.get(key)
  }

  set(key: string, entry: Entry): void {
    this.entries.set(key, entry, entry.until)
  }

  get size(): number {
    return this.entries.size
  }
}
