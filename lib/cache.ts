import { LruMap } from 'toad-cache'
import { kiteError } from './errors.js'

/** Milliseconds since the epoch, injectable so that tests move time instead of sleeping. */
export type CacheClock = () => number

export interface BoundedCacheOptions {
  /** Entries kept at most; past that the least recently used goes. */
  maxEntries: number
  /** Lifetime of an entry set without its own expiry, ms. Default: entries do not expire. */
  ttlMs?: number
  /** Default `Date.now`. */
  clock?: CacheClock
}

interface Slot<V> {
  value: V
  /** When the entry stops being returned (clock time, ms); Infinity for never. */
  until: number
}

/**
 * The one cache of the codebase: a bounded LRU (toad-cache's LruMap, which
 * Fastify itself uses) whose entries may expire, by a TTL for the whole cache
 * or by a time given per entry. Expiry is judged with the injected clock, so
 * tests move time rather than wait. An expired entry is dropped when read.
 */
export class BoundedCache<K, V> {
  private readonly lru: LruMap<Slot<V>>
  private readonly ttlMs: number
  private readonly clock: CacheClock

  constructor(o: BoundedCacheOptions) {
    if (!Number.isInteger(o.maxEntries) || o.maxEntries < 1) throw kiteError('KITE_ERR_CONFIG_INVALID', `cache maxEntries must be a positive integer, got ${String(o.maxEntries)}`)
    // toad-cache's own TTL reads Date.now(); expiry is kept here instead, by the injected clock.
    this.lru = new LruMap<Slot<V>>(o.maxEntries, 0)
    this.ttlMs = o.ttlMs ?? Infinity
    this.clock = o.clock ?? Date.now
  }

  /** The value, unless absent or expired; marks it recently used. */
  get(key: K): V | undefined {
    const slot = this.lru.get(key)
    if (slot === undefined) return undefined
    if (slot.until <= this.clock()) {
      this.lru.delete(key)
      return undefined
    }
    return slot.value
  }

  /** Stores `value` until `until` (clock ms), or for the cache's TTL when not given. */
  set(key: K, value: V, until?: number): void {
    this.lru.set(key, { value, until: until ?? this.clock() + this.ttlMs })
  }

  delete(key: K): void {
    this.lru.delete(key)
  }

  clear(): void {
    this.lru.clear()
  }

  /** Entries held, expired ones not yet dropped included. */
  get size(): number {
    return this.lru.size
  }

  get maxEntries(): number {
    return this.lru.max
  }
}
