import { kiteError } from '../../../lib/errors.js'
import { MemoryStorage } from './memory.js'
import type { KontrolStorage } from './storage.js'

export type { ExactQuery, KeyPairRecord, KiteEvent, KiteRecord, KontrolStorage } from './storage.js'
export type { PostgresLayout, PostgresStorageOptions } from './postgres.js'
export { MemoryStorage }

/** Imports a storage module, turning a missing driver into an error that says what to install. */
async function withDriver<T>(driver: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes(`'${driver}'`)) {
      const missing = kiteError('KITE_ERR_KONTROL_STORAGE_CONFIG', `this Kontrol storage needs the ${driver} package: npm install ${driver}`)
      missing.cause = err
      throw missing
    }
    throw err
  }
}

/**
 * The storage a spec names: 'memory'; 'sqlite:<path>' (or ':memory:'), or a
 * path ending in .db/.sqlite/.sqlite3; 'postgres://…' or 'postgresql://…',
 * where a `schema` search parameter picks the schema (default 'kite').
 * A storage object is returned as it is. Postgres is migrated before this
 * resolves; an unreachable server rejects. The driver (better-sqlite3, pg)
 * is imported here, only when its storage is chosen.
 */
export async function openStorage(spec: string | KontrolStorage): Promise<KontrolStorage> {
  if (typeof spec !== 'string') return spec
  if (spec === 'memory') return new MemoryStorage()
  const sqlitePath = spec.startsWith('sqlite:') ? spec.slice('sqlite:'.length) : /\.(db|sqlite|sqlite3)$/i.test(spec) ? spec : null
  if (sqlitePath !== null) {
    const { SqliteStorage } = await withDriver('better-sqlite3', () => import('./sqlite.js'))
    return new SqliteStorage(sqlitePath)
  }
  if (/^postgres(ql)?:\/\//i.test(spec)) {
    const url = new URL(spec)
    const schema = url.searchParams.get('schema') ?? undefined
    // pg would pass unknown parameters on to the server; this one is ours.
    url.searchParams.delete('schema')
    const { PostgresStorage } = await withDriver('pg', () => import('./postgres.js'))
    return PostgresStorage.create({ connectionString: url.toString(), schema })
  }
  throw kiteError('KITE_ERR_KONTROL_STORAGE_CONFIG', `unknown Kontrol storage ${JSON.stringify(spec.replace(/\/\/[^@/]*@/, '//…@'))}: want 'memory', 'sqlite:<path>' or a postgres:// URL`)
}
