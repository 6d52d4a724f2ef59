import pg from 'pg'
import { kiteError } from '../../../lib/errors.js'
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

/**
 * Which tables the schema holds: `own` (made by our migrations, with a
 * `migrations` table) or `go` (made by Go Kontrol's schema files: uuid ids,
 * `kite.key_id` referencing `key.id`, timestamps stamped `now() at time zone 'utc'`).
 */
export type PostgresLayout = 'own' | 'go'

/**
 * Go Kontrol's KeyTTL: its cleaner deletes kite rows not refreshed for this
 * long, and its updaters refresh a live kite's row at least every 60–70 s.
 * On Go's tables a row this fresh is alive, whoever wrote it.
 */
export const GO_KEY_TTL_SECONDS = 90

/** Go's columns, as its schema files make them (spec §7.7). */
const GO_COLUMNS: Record<'kite' | 'key', Record<string, string>> = {
  kite: {
    username: 'text', environment: 'text', kitename: 'text', version: 'text', region: 'text', hostname: 'text',
    id: 'uuid', url: 'text', created_at: 'timestamp with time zone', updated_at: 'timestamp with time zone', key_id: 'uuid',
  },
  key: { id: 'uuid', public: 'text', private: 'text', created_at: 'timestamp with time zone', deleted_at: 'timestamp with time zone' },
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const isUUID = (v: string): boolean => UUID.test(v)

/**
 * Go stamps rows with `now() at time zone 'utc'`: UTC wall-clock time, stored
 * into a timestamptz as if it were the session's local time. On Go's tables
 * every time we write or compare goes through the same expression, so that
 * both Kontrols agree whatever the server's TimeZone is.
 */
const GO_NOW = "(now() AT TIME ZONE 'utc')"
/** An instant (timestamptz expression) as Go would have stamped it. */
const goStamp = (instant: string): string => `(${instant} AT TIME ZONE 'utc')`
/** Milliseconds since the epoch of a column Go stamped (back from UTC wall-clock time). */
const goMs = (column: string): string => `floor(extract(epoch FROM (${column} AT TIME ZONE current_setting('TimeZone'))) * 1000)::float8`

/** Milliseconds since the epoch of a timestamptz column, as a float8 (which pg parses to a number). */
const ms = (column: string): string => `floor(extract(epoch FROM ${column}) * 1000)::float8`
const KITE_SELECT = `username, environment, kitename AS name, version, region, hostname, id, url, key_id, ${ms('updated_at')} AS updated_at`
const KEY_SELECT = `id, public, private, ${ms('deleted_at')} AS deleted_at`
const GO_KITE_SELECT = `username, environment, kitename AS name, version, region, hostname, id::text AS id, url, key_id::text AS key_id, ${goMs('updated_at')} AS updated_at`
const GO_KEY_SELECT = `id::text AS id, public, private, ${goMs('deleted_at')} AS deleted_at`
/** The NOTIFY payload for a kite row `r`: {action, kite, url}. */
const eventJson = (action: KiteEvent['action'], r: string): string =>
  `json_build_object('action', '${action}', 'kite', json_build_object('username', ${r}.username, 'environment', ${r}.environment,
    'name', ${r}.kitename, 'version', ${r}.version, 'region', ${r}.region, 'hostname', ${r}.hostname, 'id', ${r}.id),
    'url', ${r}.url)::text`


/** The SQL text of each storage operation. */
type Statements = Record<'upsert' | 'touch' | 'remove' | 'get' | 'removeStale' | 'count' | 'addKeyPair' | 'getKeyPair' | 'getKeyPairByPublic' | 'listKeyPairs' | 'retireKeyPair', string>

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
 *
 * On a schema laid out by Go Kontrol's schema files (see {@link PostgresLayout})
 * it works on Go's tables as they are, beside a running Go Kontrol: no DDL,
 * Go's column types and time stamps, and Go's liveness rule for rows it did
 * not write itself (see {@link PostgresStorage.query} and {@link PostgresStorage.removeStale}).
 */
export class PostgresStorage implements KontrolStorage {
  private readonly pool: pg.Pool
  private readonly schema: string
  private readonly channel: string
  private readonly listeners = new KiteListeners()
  private sql
  private layoutFound: PostgresLayout = 'own'
  /**
   * Go layout only: the kites whose row this instance wrote last, with the
   * updated_at it wrote (the server's text, for an exact comparison) and that
   * time in ms. Lets removeStale delete our own dead kites at our bound
   * without touching a row another Kontrol has refreshed since.
   */
  private readonly written = new Map<string, { at: string; ms: number }>()
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
      throw kiteError('KITE_ERR_KONTROL_STORAGE_CONFIG', `invalid PostgreSQL schema name ${JSON.stringify(schema)}: want ${SCHEMA_NAME}, at most ${MAX_SCHEMA_LENGTH} characters`)
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
    this.sql = this.statements(`"${schema}"`, 'own')
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

  /** The layout found by {@link PostgresStorage.migrate}: `own` (our migrations) or `go` (Go Kontrol's tables). */
  get layout(): PostgresLayout {
    return this.layoutFound
  }

  /**
   * Applies the missing migrations in one transaction. The advisory lock
   * serialises Kontrols starting together; the later ones find nothing to do.
   * A schema holding Go Kontrol's tables (and no `migrations` table of ours)
   * is used as it is: its columns are checked, nothing is created or changed.
   */
  async migrate(): Promise<void> {
    const s = `"${this.schema}"`
    const client = await this.pool.connect()
    let failure: Error | undefined
    try {
      if (await this.findGoLayout(client)) {
        this.layoutFound = 'go'
        this.sql = this.statements(s, 'go')
        return
      }
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

  /** True when `id` cannot be in Go's uuid columns (so it is not there); always false on our own tables. */
  private notGoId(id: string): boolean {
    return this.layoutFound === 'go' && !isUUID(id)
  }

  /** Go layout: remembers the updated_at this instance wrote. */
  private wrote(rows: { id: string; at: string; ms: number }[]): void {
    for (const r of rows) this.written.set(r.id, { at: r.at, ms: r.ms })
  }

  async upsert(kite: KiteIdentity, value: { url: string; keyId: string }): Promise<void> {
    if (this.notGoId(kite.id)) throw kiteError('KITE_ERR_KONTROL_INVALID', `kite id must be a UUID on Go Kontrol's tables: ${kite.id.slice(0, 64)}`)
    if (this.notGoId(value.keyId)) throw kiteError('KITE_ERR_KONTROL_INVALID', `key id must be a UUID on Go Kontrol's tables: ${value.keyId.slice(0, 64)}`)
    const { rows } = await this.pool.query<{ id: string; at: string; ms: number }>({
      name: `kite_upsert_${this.layoutFound}`,
      text: this.sql.upsert,
      values: [kite.username, kite.environment, kite.name, kite.version, kite.region, kite.hostname, kite.id, value.url, value.keyId, this.channel],
    })
    if (this.layoutFound === 'go') this.wrote(rows)
  }

  async touch(ids: readonly string[]): Promise<string[]> {
    const valid = this.layoutFound === 'go' ? ids.filter(isUUID) : ids
    if (valid.length === 0) return [...ids]
    const { rows } = await this.pool.query<{ id: string; at: string; ms: number }>({ name: `kite_touch_${this.layoutFound}`, text: this.sql.touch, values: [valid] })
    if (this.layoutFound === 'go') this.wrote(rows)
    if (this.layoutFound === 'own') {
      const found = new Set(rows.map((r) => r.id))
      return ids.filter((id) => !found.has(id))
    }
    // Go's uuid ids come back in canonical (lowercase) form.
    const found = new Set(rows.map((r) => r.id))
    return ids.filter((id) => !found.has(id.toLowerCase()))
  }

  /**
   * Removes a kite. On Go's tables a row this instance wrote is removed only
   * if nobody refreshed it since (the kite may have registered with another
   * Kontrol, Go's included, before this one saw it leave).
   */
  async remove(id: string): Promise<KiteRecord | null> {
    if (this.notGoId(id)) return null
    let values: unknown[] = [id, this.channel]
    if (this.layoutFound === 'go') {
      const key = id.toLowerCase()
      values = [id, this.channel, this.written.get(key)?.at ?? null]
      this.written.delete(key)
    }
    const { rows } = await this.pool.query<KiteRow>(this.sql.remove, values)
    return rows.length === 0 ? null : toRecord(rows[0]!)
  }

  async get(id: string): Promise<KiteRecord | null> {
    if (this.notGoId(id)) return null
    const { rows } = await this.pool.query<KiteRow>({ name: `kite_get_${this.layoutFound}`, text: this.sql.get, values: [id] })
    return rows.length === 0 ? null : toRecord(rows[0]!)
  }

  /**
   * Kites matching `q` refreshed since `freshSince`. On Go's tables a row
   * refreshed within Go's KeyTTL (90 s) counts as fresh too, whatever
   * `freshSince` says: Go Kontrol refreshes a live kite's row only every
   * 60–70 s. Our own dead kites do not linger for that long, because the
   * Kontrol that held them deletes their rows (removeStale).
   */
  async query(q: ExactQuery, freshSince: number): Promise<KiteRecord[]> {
    const fields = queryFields(q)
    if (q.id !== undefined && q.id !== '' && this.notGoId(q.id)) return []
    // Column names come from COLUMN, never from input; values are parameters.
    const where = fields.map(([f], i) => `${COLUMN[f]} = $${i + 1}`).join(' AND ')
    const since = `to_timestamp($${fields.length + 1} / 1000.0)`
    const fresh = this.layoutFound === 'go'
      ? `updated_at >= least(${goStamp(since)}, ${GO_NOW} - interval '${GO_KEY_TTL_SECONDS} seconds')`
      : `updated_at >= ${since}`
    const { rows } = await this.pool.query<KiteRow>({
      name: `kite_query_${this.layoutFound}_${fields.map(([f]) => f[0]).join('')}`, // u, e, n, v, r, h, i: one letter per field
      text: `SELECT ${this.layoutFound === 'go' ? GO_KITE_SELECT : KITE_SELECT} FROM "${this.schema}".kite WHERE ${where} AND ${fresh}`,
      values: [...fields.map(([, v]) => v), freshSince],
    })
    return rows.map(toRecord)
  }

  /**
   * Removes kites not refreshed since `olderThan`. On Go's tables that is
   * narrowed to rows this instance wrote last (and nobody refreshed since),
   * plus every row older than Go's KeyTTL (90 s), as Go's own cleaner does:
   * a row Go Kontrol keeps alive is never removed, however old by our bound.
   */
  async removeStale(olderThan: number): Promise<KiteRecord[]> {
    if (this.layoutFound !== 'go') {
      const { rows } = await this.pool.query<KiteRow>(this.sql.removeStale, [olderThan, this.channel])
      return rows.map(toRecord)
    }
    const ids: string[] = []
    const at: string[] = []
    for (const [id, w] of this.written) {
      if (w.ms < olderThan) {
        ids.push(id)
        at.push(w.at)
      }
    }
    const { rows } = await this.pool.query<KiteRow>(this.sql.removeStale, [ids, at, this.channel])
    // Removed, or refreshed by another Kontrol since: either way no longer ours to remove.
    for (const id of ids) this.written.delete(id)
    return rows.map(toRecord)
  }

  async count(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(this.sql.count)
    return rows[0]!.n
  }

  async addKeyPair(pair: Omit<KeyPairRecord, 'deletedAt'>): Promise<void> {
    if (this.notGoId(pair.id)) throw kiteError('KITE_ERR_KONTROL_INVALID', `key id must be a UUID on Go Kontrol's tables: ${pair.id.slice(0, 64)}`)
    const { rowCount } = await this.pool.query(this.sql.addKeyPair, [pair.id, pair.public, pair.private])
    if (rowCount === 0) throw kiteError('KITE_ERR_KONTROL_STORAGE_CONFLICT', 'a key pair with this public key is stored already')
  }

  async getKeyPair(id: string): Promise<KeyPairRecord | null> {
    if (this.notGoId(id)) return null
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
    if (this.notGoId(id)) return
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

  /**
   * True when the schema holds Go Kontrol's tables and no `migrations` table
   * of ours; throws when it holds Go's tables with columns missing or changed.
   */
  private async findGoLayout(client: pg.PoolClient): Promise<boolean> {
    const { rows } = await client.query<{ table: string; column: string; type: string }>(
      `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, NULL) AS type
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname IN ('key', 'kite', 'migrations') AND c.relkind IN ('r', 'p')
          AND a.attnum > 0 AND NOT a.attisdropped`,
      [this.schema],
    )
    const tables = new Map<string, Map<string, string>>()
    for (const r of rows) {
      if (!tables.has(r.table)) tables.set(r.table, new Map())
      tables.get(r.table)!.set(r.column, r.type)
    }
    if (tables.has('migrations') || (!tables.has('kite') && !tables.has('key'))) return false
    const problems: string[] = []
    for (const table of ['key', 'kite'] as const) {
      const have = tables.get(table)
      if (have === undefined) {
        problems.push(`table ${table} is missing`)
        continue
      }
      for (const [column, type] of Object.entries(GO_COLUMNS[table])) {
        const found = have.get(column)
        if (found === undefined) problems.push(`${table}.${column} (${type}) is missing`)
        else if (found !== type) problems.push(`${table}.${column} is ${found}, not ${type}`)
      }
    }
    if (problems.length > 0) {
      const hint = problems.some((p) => p.startsWith('kite.key_id')) ? "; apply Go Kontrol's 003-migration SQL first" : ''
      throw kiteError('KITE_ERR_KONTROL_STORAGE_CONFIG', `schema "${this.schema}" has Go Kontrol's tables but not as its schema files make them: ${problems.join(', ')}${hint}`)
    }
    return true
  }

  /** The statements' text for schema `s` (already quoted), for our own tables or Go's. */
  private statements(s: string, layout: PostgresLayout): Statements {
    if (layout === 'go') return this.goStatements(s)
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

  /**
   * The same statements on Go Kontrol's tables: uuid columns, times stamped
   * as Go stamps them (GO_NOW), updated_at returned by writes so that
   * removeStale can tell our rows from rows refreshed by others.
   */
  private goStatements(s: string): Statements {
    const written = `k.id::text AS id, k.updated_at::text AS at, ${goMs('k.updated_at')} AS ms`
    return {
      upsert: `WITH k AS (
          INSERT INTO ${s}.kite (username, environment, kitename, version, region, hostname, id, url, key_id, created_at, updated_at)
          VALUES ($1, $2, $3, $4, $5, $6, $7::uuid, $8, $9::uuid, ${GO_NOW}, ${GO_NOW})
          ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, environment = EXCLUDED.environment,
            kitename = EXCLUDED.kitename, version = EXCLUDED.version, region = EXCLUDED.region,
            hostname = EXCLUDED.hostname, url = EXCLUDED.url, key_id = EXCLUDED.key_id, updated_at = ${GO_NOW}
          RETURNING *)
        SELECT ${written}, pg_notify($10, ${eventJson('REGISTER', 'k')}) FROM k`,
      touch: `WITH k AS (UPDATE ${s}.kite SET updated_at = ${GO_NOW} WHERE id = ANY($1::uuid[]) RETURNING id, updated_at)
        SELECT ${written} FROM k`,
      remove: `WITH k AS (DELETE FROM ${s}.kite WHERE id = $1::uuid AND ($3::timestamptz IS NULL OR updated_at <= $3::timestamptz) RETURNING *)
        SELECT ${GO_KITE_SELECT}, pg_notify($2, ${eventJson('DEREGISTER', 'k')}) FROM k`,
      get: `SELECT ${GO_KITE_SELECT} FROM ${s}.kite WHERE id = $1::uuid`,
      // $1/$2: the ids this instance wrote last and the updated_at it wrote; a row refreshed since by
      // anyone is kept. Rows past Go's KeyTTL go as Go's cleaner would remove them.
      removeStale: `WITH k AS (DELETE FROM ${s}.kite t
          WHERE t.updated_at < ${GO_NOW} - interval '${GO_KEY_TTL_SECONDS} seconds'
             OR EXISTS (SELECT 1 FROM unnest($1::uuid[], $2::timestamptz[]) AS m(id, at) WHERE m.id = t.id AND t.updated_at <= m.at)
          RETURNING t.*)
        SELECT ${GO_KITE_SELECT}, pg_notify($3, ${eventJson('DEREGISTER', 'k')}) FROM k`,
      count: `SELECT count(*)::int AS n FROM ${s}.kite`,
      // Go's table has no unique index on the trimmed key (and ours may add none): checked here.
      addKeyPair: `INSERT INTO ${s}.key (id, public, private) SELECT $1::uuid, $2, $3
        WHERE NOT EXISTS (SELECT 1 FROM ${s}.key WHERE ${TRIM_PUBLIC} = btrim($2, E' \\t\\n\\r'))`,
      getKeyPair: `SELECT ${GO_KEY_SELECT} FROM ${s}.key WHERE id = $1::uuid`,
      getKeyPairByPublic: `SELECT ${GO_KEY_SELECT} FROM ${s}.key WHERE ${TRIM_PUBLIC} = $1 ORDER BY deleted_at IS NOT NULL, created_at LIMIT 1`,
      listKeyPairs: `SELECT ${GO_KEY_SELECT} FROM ${s}.key ORDER BY created_at, id`,
      retireKeyPair: `UPDATE ${s}.key SET deleted_at = ${GO_NOW} WHERE id = $1::uuid AND deleted_at IS NULL`,
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
    client.on('end', () => onLost(kiteError('KITE_ERR_KONTROL_STORAGE', 'LISTEN connection closed')))
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
