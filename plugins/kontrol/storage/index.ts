import { MemoryStorage } from './memory.js'
import { PostgresStorage } from './postgres.js'
import { SqliteStorage } from './sqlite.js'
import type { KontrolStorage } from './storage.js'

export type { ExactQuery, KeyPairRecord, KiteEvent, KiteRecord, KontrolStorage } from './storage.js'
export type { PostgresLayout, PostgresStorageOptions } from './postgres.js'
export { MemoryStorage, PostgresStorage, SqliteStorage }

/**
 * The storage a spec names: 'memory'; 'sqlite:<path>' (or ':memory:'), or a
 * path ending in .db/.sqlite/.sqlite3; 'postgres://…' or 'postgresql://…',
 * where a `schema` search parameter picks the schema (default 'kite').
 * A storage object is returned as it is. Postgres is migrated before this
 * resolves; an unreachable server rejects.
 */
export async function openStorage(spec: string | KontrolStorage): Promise<KontrolStorage> {
  if (typeof spec !== 'string') return spec
  if (spec === 'memory') return new MemoryStorage()
  if (spec.startsWith('sqlite:')) return new SqliteStorage(spec.slice('sqlite:'.length))
  if (/\.(db|sqlite|sqlite3)$/i.test(spec)) return new SqliteStorage(spec)
  if (/^postgres(ql)?:\/\//i.test(spec)) {
    const url = new URL(spec)
    const schema = url.searchParams.get('schema') ?? undefined
    // pg would pass unknown parameters on to the server; this one is ours.
    url.searchParams.delete('schema')
    return PostgresStorage.create({ connectionString: url.toString(), schema })
  }
  throw new Error(`unknown Kontrol storage ${JSON.stringify(spec.replace(/\/\/[^@/]*@/, '//…@'))}: want 'memory', 'sqlite:<path>' or a postgres:// URL`)
}
