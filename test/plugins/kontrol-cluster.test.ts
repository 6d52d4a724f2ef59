import t from 'tap'
import { KiteClient } from '../../lib/client/client.js'
import type { GetKitesResult, KiteEventMessage } from '../../lib/protocol/kontrol.js'
import { eventually, startKontrol, startRegisteredKite } from '../helpers/kontrol.js'
import { goKontrolDatabase } from '../helpers/go-kontrol.js'
import { freshSchemaURL } from '../helpers/postgres.js'
import type { PostgresLayout, PostgresStorage } from '../../plugins/kontrol/storage/postgres.js'

/** Two Kontrols of ours on one database; `database` gives its storage URL. */
async function twoKontrols(t: Tap.Test, layout: PostgresLayout, database: () => Promise<string>): Promise<void> {
  const storage = await database()
  const a = await startKontrol(t, { storage })
  const b = await startKontrol(t, { storage })
  t.same([a, b].map((k) => (k.app.kontrol.storage as PostgresStorage).layout), [layout, layout], `both on the ${layout} layout`)
  t.equal(b.app.kontrol.keys.current.id, a.app.kontrol.keys.current.id, 'the second Kontrol uses the key pair the first one stored')

  const watcher = new KiteClient(b.url, { auth: { type: 'kiteKey', key: b.kiteKey('bob') }, kite: { name: 'watcher', username: 'bob' } })
  t.teardown(() => watcher.close())
  await watcher.connect()
  const events: KiteEventMessage[] = []
  await watcher.tell('getKites', { query: { username: 'alice', name: 'math' }, watchCallback: (e: KiteEventMessage) => events.push(e) })

  const kite = await startRegisteredKite(t, [a.url, b.url], a.kiteKey('alice'))
  const viaB = (await watcher.tell('getKites', { query: { username: 'alice', name: 'math' } })) as GetKitesResult
  t.equal(viaB.kites.length, 1, 'registered through A, found through B as soon as registering is done')
  await eventually(() => events.some((e) => e.action === 'REGISTER' && e.kite.id === kite.app.kite.identity.id), 10_000)
  t.pass('the REGISTER event crossed from A to B (LISTEN/NOTIFY)')

  // A dies: its kites register again with B.
  events.length = 0
  await a.app.close()
  await eventually(() => events.some((e) => e.action === 'REGISTER'), 15_000)
  await eventually(() => kite.app.kontrolRegister.registered, 15_000)
  const after = (await watcher.tell('getKites', { query: { username: 'alice', name: 'math' } })) as GetKitesResult
  t.equal(after.kites.length, 1, 'the kite is registered with B')
  t.equal(b.app.kontrol.registry.size, 1, 'and B keeps it alive')
  const client = new KiteClient(after.kites[0]!.url, { auth: { type: 'token', key: after.kites[0]!.token } })
  t.teardown(() => client.close())
  await client.connect()
  t.equal(await client.tell('secret'), 'hello bob', "B's token works at the kite")
}

t.test('two Kontrols on one PostgreSQL database', (t) => twoKontrols(t, 'own', async () => freshSchemaURL(t, 'kite_cluster')))

t.test("two Kontrols on one PostgreSQL database laid out by Go Kontrol's schema files", (t) =>
  twoKontrols(t, 'go', async () => (await goKontrolDatabase(t, { timezone: 'Asia/Tokyo' })).url))
