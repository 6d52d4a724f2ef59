import type { KiteIdentity } from '../../../lib/protocol/kite.js'
import type { KeyPairRecord, KiteRecord } from './storage.js'

/** A kite row as the SQL backends select it (times in ms since the epoch). */
export interface KiteRow {
  username: string
  environment: string
  name: string
  version: string
  region: string
  hostname: string
  id: string
  url: string
  key_id: string
  updated_at: number
}

/** A key-pair row as the SQL backends select it. */
export interface KeyPairRow {
  id: string
  public: string
  private: string
  deleted_at: number | null
}

export function toRecord(r: KiteRow): KiteRecord {
  const kite: KiteIdentity = {
    username: r.username, environment: r.environment, name: r.name, version: r.version,
    region: r.region, hostname: r.hostname, id: r.id,
  }
  return { kite, url: r.url, keyId: r.key_id, updatedAt: r.updated_at }
}

export function toKeyPair(r: KeyPairRow): KeyPairRecord {
  return { id: r.id, public: r.public, private: r.private, deletedAt: r.deleted_at }
}
