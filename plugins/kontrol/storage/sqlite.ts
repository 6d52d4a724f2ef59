import Database from 'better-sqlite3'
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import type { KiteField, KiteIdentity } from '../../../lib/protocol/kite.js'
import { KiteListeners, queryFields } from './memory.js'
import { toKeyPair, toRecord, type KeyPairRow, type KiteRow } from './rows.js'
import type { ExactQuery, KeyPairRecord, KiteEvent, KiteRecord, KontrolStorage } from './storage.js'

/** Whitespace trimmed from public keys before comparing them (JS `trim()` of a PEM). */
const TRIM_PUBLIC = 'trim(public, char(32, 9, 10, 13))'

/** Schema versions; entry i brings `user_version` from i to i + 1. Append, never edit. */
const MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS kites (
    username TEXT NOT NULL,
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    region TEXT NOT NULL,
    hostname TEXT NOT NULL,
    id TEXT NOT NULL PRIMARY KEY,
    url TEXT NOT NULL,
    key_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS kites_username_environment_name ON kites (username, environment, name);
  CREATE INDEX IF NOT EXISTS kites_updated_at ON kites (updated_at);
  CREATE TABLE IF NOT EXISTS key_pairs (
    id TEXT NOT NULL PRIMARY KEY,
    public TEXT NOT NULL UNIQUE,
    private TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
  );
  CREATE UNIQUE INDEX IF NOT EXISTS key_pairs_public_trimmed ON key_pairs (${TRIM_PUBLIC});`,
]

/** Column of each kite field (the same names here). */
const KITE_COLUMNS = 'username, environment, name, version, region, hostname, id, url, key_id, updated_at'


/**
 * The file holds Kontrol's private keys: it is created 0600 (and made 0600 if
 * it was not) before SQLite opens it; SQLite gives its -wal/-shm/-journal
 * files the database file's mode, and older ones are fixed here too. A folder
 * created here (usually $KITE_HOME on a first start) is 0700.
 */
export function protectDatabaseFile(path: string): void {
  const dir = dirname(path)
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    chmodSync(dir, 0o700)
  }
  closeSync(openSync(path, 'a', 0o600))
  chmodSync(path, 0o600)
  for (const suffix of ['-wal', '-shm', '-journal']) {
    if (existsSync(path + suffix)) chmodSync(path + suffix, 0o600)
  }
}

/**
 * Kites and key pairs in one SQLite file (or ':memory:'), for a single
 * Kontrol that should keep its key pairs and registrations across restarts.
 * better-sqlite3 is synchronous; each method runs to completion before it
 * returns its promise. Events are local to this process and reach listeners
 * synchronously after the change.
 */
export class SqliteStorage implements KontrolStorage {
  private readonly db: Database.Database
  private readonly listeners = new KiteListeners()
  /** One prepared statement per combination of query fields, built on first use. */
  private readonly queries = new Map<string, Database.Statement<unknown[], KiteRow>>()
  private readonly stmt
  private readonly touchAll: (ids: readonly string[], now: number) => string[]

  constructor(path: string, private readonly now: () => number = Date.now) {
    if (path !== ':memory:' && path !== '') protectDatabaseFile(path)
    this.db = new Database(path)
    // WAL: readers do not block the writer; NORMAL sync is durable enough with WAL.
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.pragma('busy_timeout = 5000')
    this.migrate()
    const db = this.db
    this.stmt = {
      upsert: db.prepare<[string, string, string, string, string, string, string, string, string, number]>(
        `INSERT INTO kites (${KITE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET username = excluded.username, environment = excluded.environment,
           name = excluded.name, version = excluded.version, region = excluded.region, hostname = excluded.hostname,
           url = excluded.url, key_id = excluded.key_id, updated_at = excluded.updated_at`,
      ),
      touch: db.prepare<[number, string]>('UPDATE kites SET updated_at = ? WHERE id = ?'),
      remove: db.prepare<[string], KiteRow>(`DELETE FROM kites WHERE id = ? RETURNING ${KITE_COLUMNS}`),
      get: db.prepare<[string], KiteRow>(`SELECT ${KITE_COLUMNS} FROM kites WHERE id = ?`),
      removeStale: db.prepare<[number], KiteRow>(`DELETE FROM kites WHERE updated_at < ? RETURNING ${KITE_COLUMNS}`),
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM kites'),
      addKeyPair: db.prepare<[string, string, string, number]>('INSERT INTO key_pairs (id, public, private, created_at) VALUES (?, ?, ?, ?)'),
      getKeyPair: db.prepare<[string], KeyPairRow>('SELECT id, public, private, deleted_at FROM key_pairs WHERE id = ?'),
      getKeyPairByPublic: db.prepare<[string], KeyPairRow>(`SELECT id, public, private, deleted_at FROM key_pairs WHERE ${TRIM_PUBLIC} = ?`),
      listKeyPairs: db.prepare<[], KeyPairRow>('SELECT id, public, private, deleted_at FROM key_pairs ORDER BY created_at, rowid'),
      retireKeyPair: db.prepare<[number, string]>('UPDATE key_pairs SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL'),
    }
    this.touchAll = db.transaction((ids: readonly string[], now: number) =>
      ids.filter((id) => this.stmt.touch.run(now, id).changes === 0))
  }

  async upsert(kite: KiteIdentity, value: { url: string; keyId: string }): Promise<void> {
    this.stmt.upsert.run(kite.username, kite.environment, kite.name, kite.version, kite.region, kite.hostname, kite.id,
      value.url, value.keyId, this.now())
    this.listeners.emit({ action: 'REGISTER', kite: { ...kite }, url: value.url })
  }

  async touch(ids: readonly string[]): Promise<string[]> {
    return ids.length === 0 ? [] : this.touchAll(ids, this.now())
  }

  async remove(id: string): Promise<KiteRecord | null> {
    const row = this.stmt.remove.get(id)
    if (row === undefined) return null
    const r = toRecord(row)
    this.listeners.emit({ action: 'DEREGISTER', kite: { ...r.kite }, url: r.url })
    return r
  }

  async get(id: string): Promise<KiteRecord | null> {
    const row = this.stmt.get.get(id)
    return row === undefined ? null : toRecord(row)
  }

  async query(q: ExactQuery, freshSince: number): Promise<KiteRecord[]> {
    const fields = queryFields(q)
    return this.queryStatement(fields.map(([f]) => f)).all(...fields.map(([, v]) => v), freshSince).map(toRecord)
  }

  async removeStale(olderThan: number): Promise<KiteRecord[]> {
    const gone = this.stmt.removeStale.all(olderThan).map(toRecord)
    for (const r of gone) this.listeners.emit({ action: 'DEREGISTER', kite: { ...r.kite }, url: r.url })
    return gone
  }

  async count(): Promise<number> {
    return this.stmt.count.get()!.n
  }

  async addKeyPair(pair: Omit<KeyPairRecord, 'deletedAt'>): Promise<void> {
    this.stmt.addKeyPair.run(pair.id, pair.public, pair.private, this.now())
  }

  async getKeyPair(id: string): Promise<KeyPairRecord | null> {
    const row = this.stmt.getKeyPair.get(id)
    return row === undefined ? null : toKeyPair(row)
  }

  async getKeyPairByPublic(pem: string): Promise<KeyPairRecord | null> {
    const row = this.stmt.getKeyPairByPublic.get(pem.trim())
    return row === undefined ? null : toKeyPair(row)
  }

  async listKeyPairs(): Promise<KeyPairRecord[]> {
    return this.stmt.listKeyPairs.all().map(toKeyPair)
  }

  async retireKeyPair(id: string): Promise<void> {
    this.stmt.retireKeyPair.run(this.now(), id)
  }

  onEvent(fn: (event: KiteEvent) => void): () => void {
    return this.listeners.add(fn)
  }

  async close(): Promise<void> {
    this.listeners.clear()
    if (this.db.open) this.db.close()
  }

  /** Brings the schema to the newest version; `user_version` records where it is. */
  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number
    this.db.transaction(() => {
      for (let v = current; v < MIGRATIONS.length; v++) {
        this.db.exec(MIGRATIONS[v]!)
        // The version is our own integer, not input (a pragma takes no parameters).
        this.db.pragma(`user_version = ${v + 1}`)
      }
    })()
  }

  private queryStatement(fields: KiteField[]): Database.Statement<unknown[], KiteRow> {
    const key = fields.join(',')
    let stmt = this.queries.get(key)
    if (stmt === undefined) {
      // Column names come from KITE_FIELDS, never from input; values are bound.
      const where = fields.map((f) => `${f} = ?`).join(' AND ')
      stmt = this.db.prepare<unknown[], KiteRow>(`SELECT ${KITE_COLUMNS} FROM kites WHERE ${where} AND updated_at >= ?`)
      this.queries.set(key, stmt)
    }
    return stmt
  }
}
