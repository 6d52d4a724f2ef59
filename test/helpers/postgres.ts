import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** The PostgreSQL the tests use (CI's is on 127.0.0.1:5432 with trust auth). */
export const POSTGRES_URL = process.env.KITE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A storage URL for a fresh schema, dropped on teardown, so parallel tests never meet. */
export function freshSchemaURL(t: Teardown, prefix = 'kite_t'): string {
  const schema = `${prefix}_${randomBytes(5).toString('hex')}`
  t.teardown(async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL })
    await client.connect()
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await client.end()
  })
  return `${POSTGRES_URL}?schema=${schema}`
}
