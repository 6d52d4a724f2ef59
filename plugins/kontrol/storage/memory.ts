import { kiteError } from '../../../lib/errors.js'
import { KITE_FIELDS, type KiteField, type KiteIdentity } from '../../../lib/protocol/kite.js'
import type { ExactQuery, KeyPairRecord, KiteEvent, KiteRecord, KontrolStorage } from './storage.js'

/**
 * The onEvent listeners of one storage. A throwing listener is skipped, not
 * propagated: a watcher's bug must not fail a registration or stop the
 * other watchers. Shared by the three implementations.
 */
export class KiteListeners {
  private readonly fns = new Set<(event: KiteEvent) => void>()

  add(fn: (event: KiteEvent) => void): () => void {
    // A wrapper per subscription, so subscribing the same function twice needs two unsubscribes.
    const entry = (event: KiteEvent): void => fn(event)
    this.fns.add(entry)
    return () => {
      this.fns.delete(entry)
    }
  }

  emit(event: KiteEvent): void {
    for (const fn of [...this.fns]) {
      try {
        fn(event)
      } catch {
        // See the class comment.
      }
    }
  }

  clear(): void {
    this.fns.clear()
  }
}

/** The non-empty fields of a query, in KITE_FIELDS order; throws when there are none. */
export function queryFields(q: ExactQuery): [KiteField, string][] {
  const fields: [KiteField, string][] = []
  for (const field of KITE_FIELDS) {
    const value = q[field]
    if (typeof value === 'string' && value !== '') fields.push([field, value])
  }
  if (fields.length === 0) throw kiteError('KITE_ERR_KONTROL_INVALID', 'kontrol storage: a query needs at least one non-empty field')
  return fields
}

function copyRecord(r: KiteRecord): KiteRecord {
  return { kite: { ...r.kite }, url: r.url, keyId: r.keyId, updatedAt: r.updatedAt }
}

/** The key of Kontrol's usual query, (username, environment, name). Fields holding NUL may collide; harmless, as candidates are filtered exactly. */
const triple = (username: string, environment: string, name: string): string => `${username}\0${environment}\0${name}`

/**
 * Kites and key pairs in Maps, for a single Kontrol and for tests. Every
 * field has an index (value → ids), and so has the (username, environment,
 * name) triple; a query scans only the smallest matching set, so an exact
 * query over 10,000 kites touches a handful. Events reach listeners
 * synchronously, right after the change.
 */
export class MemoryStorage implements KontrolStorage {
  private readonly kites = new Map<string, KiteRecord>()
  private readonly index = new Map<KiteField, Map<string, Set<string>>>(KITE_FIELDS.map((f) => [f, new Map()]))
  private readonly byTriple = new Map<string, Set<string>>()
  private readonly keyPairs = new Map<string, KeyPairRecord>()
  /** Trimmed public PEM → key pair id. */
  private readonly byPublic = new Map<string, string>()
  private readonly listeners = new KiteListeners()
  private closed = false

  /** @param now the clock for updatedAt (ms since the epoch); tests may pass a fake one. */
  constructor(private readonly now: () => number = Date.now) {}

  async upsert(kite: KiteIdentity, value: { url: string; keyId: string }): Promise<void> {
    this.open()
    const previous = this.kites.get(kite.id)
    if (previous !== undefined) this.unindex(previous.kite)
    const record: KiteRecord = { kite: { ...kite }, url: value.url, keyId: value.keyId, updatedAt: this.now() }
    this.kites.set(kite.id, record)
    this.addToIndex(record.kite)
    this.listeners.emit({ action: 'REGISTER', kite: { ...kite }, url: value.url })
  }

  async touch(ids: readonly string[]): Promise<string[]> {
    this.open()
    const now = this.now()
    const missing: string[] = []
    for (const id of ids) {
      const r = this.kites.get(id)
      if (r === undefined) missing.push(id)
      else r.updatedAt = now
    }
    return missing
  }

  async remove(id: string): Promise<KiteRecord | null> {
    this.open()
    const r = this.kites.get(id)
    if (r === undefined) return null
    this.delete(r)
    return copyRecord(r)
  }

  async get(id: string): Promise<KiteRecord | null> {
    this.open()
    const r = this.kites.get(id)
    return r === undefined ? null : copyRecord(r)
  }

  async query(q: ExactQuery, freshSince: number): Promise<KiteRecord[]> {
    this.open()
    const fields = queryFields(q)
    let smallest: Set<string> | undefined
    if (q.username && q.environment && q.name) {
      smallest = this.byTriple.get(triple(q.username, q.environment, q.name))
      if (smallest === undefined) return []
    }
    for (const [field, value] of fields) {
      const ids = this.index.get(field)!.get(value)
      if (ids === undefined) return []
      if (smallest === undefined || ids.size < smallest.size) smallest = ids
    }
    const out: KiteRecord[] = []
    for (const id of smallest!) {
      const r = this.kites.get(id)!
      if (r.updatedAt >= freshSince && fields.every(([field, value]) => r.kite[field] === value)) out.push(copyRecord(r))
    }
    return out
  }

  async removeStale(olderThan: number): Promise<KiteRecord[]> {
    this.open()
    const stale = [...this.kites.values()].filter((r) => r.updatedAt < olderThan)
    for (const r of stale) this.delete(r)
    return stale.map(copyRecord)
  }

  async count(): Promise<number> {
    this.open()
    return this.kites.size
  }

  async addKeyPair(pair: Omit<KeyPairRecord, 'deletedAt'>): Promise<void> {
    this.open()
    const pub = pair.public.trim()
    if (this.keyPairs.has(pair.id)) throw kiteError('KITE_ERR_KONTROL_STORAGE_CONFLICT', `key pair ${pair.id} already exists`)
    if (this.byPublic.has(pub)) throw kiteError('KITE_ERR_KONTROL_STORAGE_CONFLICT', 'a key pair with this public key already exists')
    this.keyPairs.set(pair.id, { id: pair.id, public: pair.public, private: pair.private, deletedAt: null })
    this.byPublic.set(pub, pair.id)
  }

  async getKeyPair(id: string): Promise<KeyPairRecord | null> {
    this.open()
    const k = this.keyPairs.get(id)
    return k === undefined ? null : { ...k }
  }

  async getKeyPairByPublic(pem: string): Promise<KeyPairRecord | null> {
    this.open()
    const id = this.byPublic.get(pem.trim())
    return id === undefined ? null : { ...this.keyPairs.get(id)! }
  }

  async listKeyPairs(): Promise<KeyPairRecord[]> {
    this.open()
    // Map iteration order is insertion order: oldest first.
    return [...this.keyPairs.values()].map((k) => ({ ...k }))
  }

  async retireKeyPair(id: string): Promise<void> {
    this.open()
    const k = this.keyPairs.get(id)
    if (k !== undefined && k.deletedAt === null) k.deletedAt = this.now()
  }

  onEvent(fn: (event: KiteEvent) => void): () => void {
    return this.listeners.add(fn)
  }

  async close(): Promise<void> {
    this.closed = true
    this.listeners.clear()
  }

  private open(): void {
    if (this.closed) throw kiteError('KITE_ERR_KONTROL_STORAGE_CLOSED')
  }

  private delete(r: KiteRecord): void {
    this.kites.delete(r.kite.id)
    this.unindex(r.kite)
    this.listeners.emit({ action: 'DEREGISTER', kite: { ...r.kite }, url: r.url })
  }

  private addToIndex(kite: KiteIdentity): void {
    addTo(this.byTriple, triple(kite.username, kite.environment, kite.name), kite.id)
    for (const field of KITE_FIELDS) {
      addTo(this.index.get(field)!, kite[field], kite.id)
    }
  }

  private unindex(kite: KiteIdentity): void {
    deleteFrom(this.byTriple, triple(kite.username, kite.environment, kite.name), kite.id)
    for (const field of KITE_FIELDS) deleteFrom(this.index.get(field)!, kite[field], kite.id)
  }
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  let ids = index.get(key)
  if (ids === undefined) index.set(key, (ids = new Set()))
  ids.add(id)
}

function deleteFrom(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key)
  ids?.delete(id)
  if (ids?.size === 0) index.delete(key)
}
