import type { KiteIdentity } from '../../../lib/protocol/kite.js'

/** A registered kite as Kontrol stores it. */
export interface KiteRecord {
  kite: KiteIdentity
  /** The URL the kite registered (where clients dial it). */
  url: string
  /** The id of the Kontrol key pair the kite registered with; tokens for it are signed with that pair. */
  keyId: string
  /** When the registration was last refreshed (ms since the epoch). */
  updatedAt: number
}

/** An exact-match query: every non-empty field must equal the kite's. Version constraints are Kontrol's job. */
export type ExactQuery = Partial<Record<keyof KiteIdentity, string>>

/** A Kontrol RS256 key pair. */
export interface KeyPairRecord {
  id: string
  /** PEM public key. */
  public: string
  /** PEM private key. */
  private: string
  /** When it was retired (soft delete), or null. */
  deletedAt: number | null
}

/** A change to the registry, for watchers (also across Kontrol instances sharing a database). */
export interface KiteEvent {
  action: 'REGISTER' | 'DEREGISTER'
  kite: KiteIdentity
  url: string
}

/**
 * Where Kontrol keeps kites and key pairs. One interface, one file per
 * implementation (memory, sqlite, postgres); every method may reject when the
 * backend is unreachable, and must never crash the process.
 */
export interface KontrolStorage {
  /** Registers or replaces the kite with this id (url, keyId, updatedAt = now). Emits REGISTER. */
  upsert(kite: KiteIdentity, value: { url: string; keyId: string }): Promise<void>
  /** Refreshes updatedAt of these kite ids; returns the ids that were not found. */
  touch(ids: readonly string[]): Promise<string[]>
  /** Removes a kite; returns it, or null if there was none. Emits DEREGISTER. */
  remove(id: string): Promise<KiteRecord | null>
  /** The kite with this id, or null. */
  get(id: string): Promise<KiteRecord | null>
  /** Kites matching every non-empty field exactly, refreshed after `freshSince` (ms since the epoch). At least one field must be set. */
  query(q: ExactQuery, freshSince: number): Promise<KiteRecord[]>
  /** Removes kites not refreshed since `olderThan` (ms since the epoch); returns them. Emits DEREGISTER for each. */
  removeStale(olderThan: number): Promise<KiteRecord[]>
  /** Number of kites stored. */
  count(): Promise<number>

  /** Stores a key pair (ids are unique; public keys are unique). */
  addKeyPair(pair: Omit<KeyPairRecord, 'deletedAt'>): Promise<void>
  /** The key pair with this id (deleted ones too), or null. */
  getKeyPair(id: string): Promise<KeyPairRecord | null>
  /** The key pair with this public key (compared as trimmed text), or null. */
  getKeyPairByPublic(pem: string): Promise<KeyPairRecord | null>
  /** Every key pair, oldest first. */
  listKeyPairs(): Promise<KeyPairRecord[]>
  /** Retires a key pair (soft delete: it stays readable with deletedAt set). */
  retireKeyPair(id: string): Promise<void>

  /** Calls `fn` for every REGISTER/DEREGISTER, including those made by other Kontrols on the same database. Returns an unsubscribe function. */
  onEvent(fn: (event: KiteEvent) => void): () => void
  /** Releases connections and timers. */
  close(): Promise<void>
}
