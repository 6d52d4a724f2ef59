import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { KiteClient } from '../../lib/client/client.js'
import type { GetKitesResult } from '../../lib/protocol/kontrol.js'
import { eventually, startKontrol, startRegisteredKite } from '../helpers/kontrol.js'
import { freshSchemaURL } from '../helpers/postgres.js'

/**
 * Stops and starts the machine's PostgreSQL under a running Kontrol. Run on
 * its own (npm test runs it after the other tests), never in parallel with
 * tests that use the database.
 */
const version = existsSync('/etc/postgresql') ? (readdirSync('/etc/postgresql').at(0) ?? '') : ''
const pgctl = (action: 'stop' | 'start'): void => {
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', action], { stdio: 'ignore' })
}

// It stops the machine's PostgreSQL: only where that is wanted (CI, or asked for).
const allowed = process.env.CI === 'true' || process.env.KITE_TEST_PG_RESTART === '1'

t.test('PostgreSQL restarting under a running Kontrol', { skip: allowed ? false : 'stops the machine\'s PostgreSQL: set KITE_TEST_PG_RESTART=1 (CI sets CI=true)' }, async (t) => {
  t.teardown(() => {
    try {
      pgctl('start')
    } catch {
      // already running
    }
  })
  const storage = freshSchemaURL(t, 'kite_fault')
  const k = await startKontrol(t, { storage, heartbeatInterval: 1, heartbeatGrace: 2 })
  const before = await startRegisteredKite(t, k.url, k.kiteKey('alice'), { name: 'before' })
  const finder = new KiteClient(k.url, { auth: { type: 'kiteKey', key: k.kiteKey('bob') }, kite: { name: 'finder', username: 'bob' } })
  t.teardown(() => finder.close())
  await finder.connect()
  const find = async (name: string) => ((await finder.tell('getKites', { query: { username: 'alice', name } })) as GetKitesResult).kites

  t.equal((await find('before')).length, 1)
  pgctl('stop')
  await t.rejects(find('before'), { type: 'genericError', message: /kontrol storage is unavailable/ }, 'calls fail with a clear error while the database is away')
  const during = startRegisteredKite(t, k.url, k.kiteKey('alice'), { name: 'during' })
  await new Promise((r) => setTimeout(r, 1500))
  t.equal(await finder.tell('kite.ping'), 'pong', 'Kontrol is alive and answering')
  pgctl('start')
  // While PostgreSQL starts up, connecting can wait for the pool's 10 s connect timeout; allow a few.
  await eventually(async () => (await find('before').catch(() => [])).length === 1, 60000)
  t.pass('the kite registered before the outage is still there')
  await during
  await eventually(async () => (await find('during').catch(() => [])).length === 1, 60000)
  t.pass('the kite that tried to register during the outage registered once the database was back')
  t.ok(before.app.kontrolRegister.registered)
})
