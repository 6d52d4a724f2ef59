import pg from 'pg'
import { kiteFromWire, type KiteField, type KiteIdentity } from '../../../lib/protocol/kite.js'
import { KiteListeners, queryFields } from './memory.js'
import { toKeyPair, toRecord, type KeyPairRow, type KiteRow } from './rows.js'
import type { ExactQuery, KeyPairRecord, KiteEvent, KiteRecord, KontrolStorage } from './storage.js'

export interface PostgresStorageOptions {
  connectionString: string
  /** The schema holding the tables; lowercase letters, digits and `_`, at most 50 characters. Default 'kite'. */
  schema?: string
  /** Pool connections, besides the one LISTEN connection. Default 10. */
  poolSize?: number
  /**
   * Connection errors handled here rather than thrown: pool clients dying,
   * the LISTEN connection dropping (it reconnects by itself). Default: ignored.
   */
  onError?: (err: Error, source: 'pool' | 'listener') => void
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]*$/
/** A channel name is at most 63 bytes, and it is `<schema>_kite_events`. */
const MAX_SCHEMA_LENGTH = 50
const MAX_BACKOFF_MS = 5000

/** The kite table's column for each field: `name` is `kitename`, as in Go Kontrol. */
const COLUMN: Record<KiteField, string> = {
  username: 'username', environment: 'environment', name: 'kitename', version: 'version',
  region: 'region', hostname: 'hostname', id: 'id',
}

/** Whitespace trimmed from public keys before comparing them (JS `trim()` of a PEM). */
const TRIM_PUBLIC = "btrim(public, E' \\t\\n\\r')"

/** Schema versions; entry i brings the schema from version i to i + 1. Append, never edit. */
const MIGRATIONS: ((s: string) => string)[] = [
  (s) => `
    CREATE TABLE ${s}.key (
      id TEXT PRIMARY KEY,
      public TEXT NOT NULL UNIQUE,
      private TEXT NOT NULL,
      created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
      deleted_at TIMESTAMPTZ
    );
    CREATE UNIQUE INDEX key_public_trimmed_idx ON ${s}.key (${TRIM_PUBLIC});
    CREATE TABLE ${s}.kite (
      username TEXT NOT NULL,
      environment TEXT NOT NULL,
      kitename TEXT NOT NULL,
      version TEXT NOT NULL,
      region TEXT NOT NULL,
      hostname TEXT NOT NULL,
      id TEXT PRIMARY KEY,
      url TEXT NOT NULL,
      key_id TEXT NOT NULL,
      created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
      updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX kite_username_environment_kitename_idx ON ${s}.kite (username, environment, kitename);
    CREATE INDEX kite_updated_at_idx ON ${s}.kite (updated_at);`,
]

/** Milliseconds since the epoch of a timestamptz column, as a float8 (which pg parses to a number). */
const ms = (column: string): string => `floor(extract(epoch FROM ${column}) * 1000)::float8`
const KITE_SELECT = `username, environment, kitename AS name, version, region, hostname, id, url, key_id, ${ms('updated_at')} AS updated_at`
const KEY_SELECT = `id, public, private, ${ms('deleted_at')} AS deleted_at`
/** The NOTIFY payload for a kite row `r`: {action, kite, url}. */
const eventJson = (action: KiteEvent['action'], r: string): string =>
  `json_build_object('action', '${action}', 'kite', json_build_object('username', ${r}.username, 'environment', ${r}.environment,
    'name', ${r}.kitename, 'version', ${r}.version, 'region', ${r}.region, 'hostname', ${r}.hostname, 'id', ${r}.id),
    'url', ${r}.url)::text`


function parseEvent(payload: string): KiteEvent | null {
  let v: { action?: unknown; kite?: unknown; url?: unknown }
  try {
    v = JSON.parse(payload) as typeof v
  } catch {
    return null
  }
  if (v === null || (v.action !== 'REGISTER' && v.action !== 'DEREGISTER') || typeof v.url !== 'string') return null
  const kite = kiteFromWire(v.kite)
  return kite === null ? null : { action: v.action, kite, url: v.url }
}

/**
 * Kites and key pairs in PostgreSQL, shared by several Kontrols. The server's
 * clock stamps updatedAt, so Kontrols with skewed clocks agree on freshness.
 * Changes are announced with pg_notify in the same statement, and every
 * instance (the one that made the change too) delivers events only from its
 * LISTEN connection: each event reaches each instance once, after the commit,
 * asynchronously. The LISTEN connection reconnects with backoff; events
 * sent while it is down are lost.
 */
export class PostgresStorage implements KontrolStorage {
  private readonly pool: pg.Pool
  private readonly schema: string
  private readonly channel: string
  private readonly listeners = new KiteListeners()
  private readonly sql
  private listener: pg.Client | null = null
  /** The LISTEN connection attempt in flight (or the last one). */
  private connecting: Promise<void>
  /** The first LISTEN attempt: create() waits for it. */
  private readonly listening: Promise<void>
  private reconnectTimer: NodeJS.Timeout | null = null
  private backoffMs = 0
  private closed = false

  /** Opens the pool and starts listening; use {@link PostgresStorage.create} to also migrate and wait for LISTEN. */
  constructor(private readonly options: PostgresStorageOptions) {
    const schema = options.schema ?? 'kite'
    if (!SCHEMA_NAME.test(schema) || schema.length > MAX_SCHEMA_LENGTH) {
      throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(schema)}: want ${SCHEMA_NAME}, at most ${MAX_SCHEMA_LENGTH} characters`)
    }
    this.schema = schema
    this.channel = `${schema}_kite_events`
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 10_000,
      // No query may wait for ever (a connection lost mid-query while PostgreSQL restarts).
      query_timeout: 15_000,
      keepAlive: true,
    })
    // An idle client losing its connection (PostgreSQL restarting) must not crash the process.
    this.pool.on('error', (err) => this.report(err, 'pool'))
    this.sql = this.statements(`"${schema}"`)
    this.listening = this.connecting = this.connectListener()
    this.listening.catch(() => {}) // create() reports it; otherwise the retry loop handles it.
  }

  /** Connects, brings the schema up to date and waits until events are being received. Rejects (and cleans up) if PostgreSQL is unreachable. */
  static async create(options: PostgresStorageOptions): Promise<PostgresStorage> {
    const storage = new PostgresStorage(options)
    try {
      await storage.migrate()
      await storage.listening
    } catch (err) {
      await storage.close()
      throw err
    }
    return storage
  }

  /**
   * Applies the missing migrations in one transaction. The advisory lock
   * serialises Kontrols starting together; the later ones find nothing to do.
   */
  async migrate(): Promise<void> {
    const s = `"${this.schema}"`
    const client = await this.pool.connect()
    let failure: Error | undefined
    try {
      await client.query('BEGIN')
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`kontrol-migrations:${this.schema}`])
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`)
      await client.query(`CREATE TABLE IF NOT EXISTS ${s}.migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
      const { rows } = await client.query<{ v: number }>(`SELECT coalesce(max(version), 0)::int AS v FROM ${s}.migrations`)
      for (let v = rows[0]!.v; v < MIGRATIONS.length; v++) {
        await client.query(MIGRATIONS[v]!(s))
        await client.query(`INSERT INTO ${s}.migrations (version) VALUES ($1)`, [v + 1])
      }
      await client.query('COMMIT')
    } catch (err) {
      failure = err as Error
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.release(failure)
    }
  }

  async upsert(kite: KiteIdentity, value: { url: string; keyId: string }): Promise<void> {
    await this.pool.query({
      name: 'kite_upsert',
      text: this.sql.upsert,
      values: [kite.username, kite.environment, kite.name, kite.version, kite.region, kite.hostname, kite.id, value.url, value.keyId, this.channel],
    })
  }

  async touch(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return []
    const { rows } = await this.pool.query<{ id: string }>({ name: 'kite_touch', text: this.sql.touch, values: [ids] })
    const found = new Set(rows.map((r) => r.id))
    return ids.filter((id) => !found.has(id))
  }

  async remove(id: string): Promise<KiteRecord | null> {
    const { rows } = await this.pool.query<KiteRow>(this.sql.remove, [id, this.channel])
    return rows.length === 0 ? null : toRecord(rows[0]!)
  }

  async get(id: string): Promise<KiteRecord | null> {
    const { rows } = await this.pool.query<KiteRow>({ name: 'kite_get', text: this.sql.get, values: [id] })
    return rows.length === 0 ? null : toRecord(rows[0]!)
  }

  async query(q: ExactQuery, freshSince: number): Promise<KiteRecord[]> {
    const fields = queryFields(q)
    // Column names come from COLUMN, never from input; values are parameters.
    const where = fields.map(([f], i) => `${COLUMN[f]} = $${i + 1}`).join(' AND ')
    const { rows } = await this.pool.query<KiteRow>({
      name: `kite_query_${fields.map(([f]) => f).join('_')}`,
      text: `SELECT ${KITE_SELECT} FROM "${this.schema}".kite WHERE ${where} AND updated_at >= to_timestamp($${fields.length + 1} / 1000.0)`,
      values: [...fields.map(([, v]) => v), freshSince],
    })
    return rows.map(toRecord)
  }

  async removeStale(olderThan: number): Promise<KiteRecord[]> {
    const { rows } = await this.pool.query<KiteRow>(this.sql.removeStale, [olderThan, this.channel])
    return rows.map(toRecord)
  }

  async count(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(this.sql.count)
    return rows[0]!.n
  }

  async addKeyPair(pair: Omit<KeyPairRecord, 'deletedAt'>): Promise<void> {
    await this.pool.query(this.sql.addKeyPair, [pair.id, pair.public, pair.private])
  }

  async getKeyPair(id: string): Promise<KeyPairRecord | null> {
    const { rows } = await this.pool.query<KeyPairRow>(this.sql.getKeyPair, [id])
    return rows.length === 0 ? null : toKeyPair(rows[0]!)
  }

  async getKeyPairByPublic(pem: string): Promise<KeyPairRecord | null> {
    const { rows } = await this.pool.query<KeyPairRow>(this.sql.getKeyPairByPublic, [pem.trim()])
    return rows.length === 0 ? null : toKeyPair(rows[0]!)
  }

  async listKeyPairs(): Promise<KeyPairRecord[]> {
    const { rows } = await this.pool.query<KeyPairRow>(this.sql.listKeyPairs)
    return rows.map(toKeyPair)
  }

  async retireKeyPair(id: string): Promise<void> {
    await this.pool.query(this.sql.retireKeyPair, [id])
  }

  onEvent(fn: (event: KiteEvent) => void): () => void {
    return this.listeners.add(fn)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.listeners.clear()
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    await this.connecting.catch(() => {}) // an attempt in flight ends its own client once it sees `closed`
    const listener = this.listener
    this.listener = null
    await Promise.allSettled([listener?.end(), this.pool.end()])
  }

  /** The statements' text for schema `s` (already quoted). */
  private statements(s: string) {
    return {
      upsert: `WITH k AS (
          INSERT INTO ${s}.kite (username, environment, kitename, version, region, hostname, id, url, key_id)
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
          ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, environment = EXCLUDED.environment,
            kitename = EXCLUDED.kitename, version = EXCLUDED.version, region = EXCLUDED.region,
            hostname = EXCLUDED.hostname, url = EXCLUDED.url, key_id = EXCLUDED.key_id, updated_at = now()
          RETURNING *)
        SELECT pg_notify($10, ${eventJson('REGISTER', 'k')}) FROM k`,
      touch: `UPDATE ${s}.kite SET updated_at = now() WHERE id = ANY($1::text[]) RETURNING id`,
      remove: `WITH k AS (DELETE FROM ${s}.kite WHERE id = $1 RETURNING *)
        SELECT ${KITE_SELECT}, pg_notify($2, ${eventJson('DEREGISTER', 'k')}) FROM k`,
      get: `SELECT ${KITE_SELECT} FROM ${s}.kite WHERE id = $1`,
      removeStale: `WITH k AS (DELETE FROM ${s}.kite WHERE updated_at < to_timestamp($1 / 1000.0) RETURNING *)
        SELECT ${KITE_SELECT}, pg_notify($2, ${eventJson('DEREGISTER', 'k')}) FROM k`,
      count: `SELECT count(*)::int AS n FROM ${s}.kite`,
      addKeyPair: `INSERT INTO ${s}.key (id, public, private) VALUES ($1, $2, $3)`,
      getKeyPair: `SELECT ${KEY_SELECT} FROM ${s}.key WHERE id = $1`,
      getKeyPairByPublic: `SELECT ${KEY_SELECT} FROM ${s}.key WHERE ${TRIM_PUBLIC} = $1`,
      listKeyPairs: `SELECT ${KEY_SELECT} FROM ${s}.key ORDER BY created_at, id`,
      retireKeyPair: `UPDATE ${s}.key SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL`,
    }
  }

  /** One attempt at the LISTEN connection; when it fails or later drops, a retry is scheduled. */
  private async connectListener(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: `kontrol-listen-${this.schema}`,
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
    })
    let lost = false
    const onLost = (err: Error): void => {
      if (lost) return
      lost = true
      if (this.listener === client) this.listener = null
      if (this.closed) return
      this.report(err, 'listener')
      client.end().catch(() => {})
      this.scheduleReconnect()
    }
    client.on('error', onLost)
    client.on('end', () => onLost(new Error('kontrol storage: LISTEN connection closed')))
    client.on('notification', (msg) => {
      if (msg.channel !== this.channel || msg.payload === undefined) return
      const event = parseEvent(msg.payload)
      if (event !== null) this.listeners.emit(event)
    })
    try {
      await client.connect()
      await client.query(`LISTEN "${this.channel}"`)
    } catch (err) {
      onLost(err as Error)
      throw err
    }
    if (this.closed || lost) {
      await client.end().catch(() => {})
      return
    }
    this.listener = client
    this.backoffMs = 0
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer !== null) return
    this.backoffMs = Math.min(this.backoffMs === 0 ? 100 : this.backoffMs * 2, MAX_BACKOFF_MS)
    // Jitter, so Kontrols that lost PostgreSQL together do not reconnect in lockstep.
    const delay = this.backoffMs / 2 + Math.random() * (this.backoffMs / 2)
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      this.connecting = this.connectListener().catch(() => {}) // a failure schedules the next attempt itself
    }, delay)
    this.reconnectTimer.unref()
  }

  private report(err: Error, source: 'pool' | 'listener'): void {
    try {
      this.options.onError?.(err, source)
    } catch {
      // A failing logger must not turn a handled error into a crash.
    }
  }
}
