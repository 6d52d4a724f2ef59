import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import type { KiteIdentity } from '../../lib/protocol/kite.js'
import { POSTGRES_URL } from './postgres.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/go-kontrol/${name}`, import.meta.url))

/** Runs statements on a short-lived connection to `url`. */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return (await c.query<R>(text, values)).rows
  } finally {
    await c.end()
  }
}

function databaseURL(base: string, database: string, user?: string): string {
  const u = new URL(base)
  u.pathname = `/${database}`
  if (user !== undefined) {
    u.username = user
    u.password = user
  }
  return u.toString()
}

export interface GoDatabase {
  /** The database, as user postgres. */
  url: string
  /** As Go's application login (member of role `kontrol`, with only Go's grants); null without roles. */
  appURL: string | null
  /** The names the roles got (random suffixes: roles are cluster-wide). */
  roles: { kontrol: string; application: string } | null
  database: string
}

/**
 * A throw-away database laid out by Go Kontrol's schema files
 * (test/fixtures/go-kontrol), dropped on teardown. Go's schema name `kite`
 * is fixed, so tests isolate themselves by database, not by schema.
 */
export async function goKontrolDatabase(t: Teardown, o: { roles?: boolean; timezone?: string } = {}): Promise<GoDatabase> {
  const suffix = randomBytes(5).toString('hex')
  const database = `kite_go_${suffix}`
  const roles = o.roles === true ? { kontrol: `kontrol_${suffix}`, application: `kontrolapplication_${suffix}` } : null
  await sql(POSTGRES_URL, `CREATE DATABASE ${database}`)
  t.teardown(async () => {
    await sql(POSTGRES_URL, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    if (roles !== null) await sql(POSTGRES_URL, `DROP ROLE IF EXISTS ${roles.application}, ${roles.kontrol}`)
  })
  if (o.timezone !== undefined) await sql(POSTGRES_URL, `ALTER DATABASE ${database} SET timezone TO '${o.timezone}'`)
  const url = databaseURL(POSTGRES_URL, database)
  await sql(url, await readFile(fixture('schema.sql'), 'utf8'))
  if (roles !== null) {
    const text = (await readFile(fixture('roles.sql'), 'utf8'))
      .replace(/\bkontrolapplication\b/g, roles.application)
      .replace(/\bkontrol\b/g, roles.kontrol)
    await sql(url, text)
  }
  return { url, appURL: roles === null ? null : databaseURL(POSTGRES_URL, database, roles.application), roles, database }
}

/** A kite row as Go's `SELECT *` scans it, by column position (spec §7.7). */
export interface GoKiteRow {
  kite: KiteIdentity
  url: string
  createdAt: Date
  updatedAt: Date
  keyId: string
}

/**
 * The SQL of Go Kontrol's postgres storage (spec §7.7), run as Go runs it,
 * on one connection whose session settings are the server's defaults.
 */
export class GoKontrolSQL {
  private constructor(private readonly c: pg.Client) {}

  static async connect(t: Teardown, url: string): Promise<GoKontrolSQL> {
    const c = new pg.Client({ connectionString: url })
    c.on('error', () => {})
    await c.connect()
    t.teardown(() => c.end().catch(() => {}))
    return new GoKontrolSQL(c)
  }

  /** Go's Upsert: UPDATE, and INSERT when no row was affected, in one transaction. */
  async upsert(k: KiteIdentity, url: string, keyId: string): Promise<void> {
    if (keyId === '') throw new Error('postgres: key id is not set')
    await this.c.query('BEGIN')
    try {
      const r = await this.c.query(`UPDATE kite.kite SET url=$1, key_id=$3, updated_at=(now() at time zone 'utc') WHERE id=$2`, [url, k.id, keyId])
      if (r.rowCount === 0) {
        await this.c.query(
          'INSERT INTO kite.kite (username, environment, kitename, version, region, hostname, id, url, key_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
          [k.username, k.environment, k.name, k.version, k.region, k.hostname, k.id, url, keyId],
        )
      }
      await this.c.query('COMMIT')
    } catch (err) {
      await this.c.query('ROLLBACK')
      throw err
    }
  }

  /** Go's Update (the updater's refresh): url and updated_at only, never an insert. */
  async update(id: string, url: string): Promise<number> {
    const r = await this.c.query(`UPDATE kite.kite SET url=$1, updated_at=(now() at time zone 'utc') WHERE id=$2`, [url, id])
    return r.rowCount ?? 0
  }

  /** Go's Get: `SELECT *` with one `field=$n` per non-empty query field, scanned by position. */
  async get(q: Partial<Record<keyof KiteIdentity, string>>): Promise<GoKiteRow[]> {
    const column: Record<string, string> = { name: 'kitename' }
    const fields = Object.entries(q).filter(([, v]) => v !== undefined && v !== '')
    const where = fields.map(([f], i) => `${column[f] ?? f}=$${i + 1}`).join(' AND ')
    const r = await this.c.query({ text: `SELECT * FROM kite.kite WHERE ${where}`, values: fields.map(([, v]) => v), rowMode: 'array' })
    return (r.rows as unknown[][]).map((v) => ({
      kite: {
        username: v[0] as string, environment: v[1] as string, name: v[2] as string, version: v[3] as string,
        region: v[4] as string, hostname: v[5] as string, id: v[6] as string,
      },
      url: v[7] as string,
      createdAt: v[8] as Date,
      updatedAt: v[9] as Date,
      keyId: v[10] as string,
    }))
  }

  /** Go's cleaner: deletes rows not refreshed for `ttlSeconds` (KeyTTL, 90). */
  async clean(ttlSeconds = 90): Promise<number> {
    const r = await this.c.query(`DELETE FROM kite.kite WHERE updated_at < (now() at time zone 'utc') - (INTERVAL '1 second' * $1)`, [ttlSeconds])
    return r.rowCount ?? 0
  }

  /** Go's AddKey. */
  async addKey(id: string, pub: string, priv: string): Promise<void> {
    await this.c.query('INSERT INTO kite.key (id, public, private) VALUES ($1, $2, $3)', [id, pub, priv])
  }

  /** Go's DeleteKey (soft). */
  async deleteKey(id: string): Promise<void> {
    await this.c.query(`UPDATE kite.key SET deleted_at = (now() at time zone 'utc') WHERE id = $1`, [id])
  }

  /** Go's GetKeyFromID / GetKeyFromPublic. */
  async key(by: 'id' | 'public', value: string): Promise<{ id: string; public: string; private: string; deleted_at: Date | null } | null> {
    const r = await this.c.query(`SELECT id, public, private, deleted_at FROM kite.key WHERE ${by === 'id' ? 'id' : 'public'}=$1`, [value])
    return (r.rows[0] as { id: string; public: string; private: string; deleted_at: Date | null } | undefined) ?? null
  }

  /** Moves a row's updated_at back by `seconds`, as if Go's updater last refreshed it then (test set-up, not Go's SQL). */
  async age(id: string, seconds: number): Promise<void> {
    await this.c.query(`UPDATE kite.kite SET updated_at = (now() at time zone 'utc') - (INTERVAL '1 second' * $2) WHERE id = $1`, [id, seconds])
  }
}
