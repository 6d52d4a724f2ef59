import t from 'tap'
import { KiteClient } from '../../lib/client/client.js'
import type { GetKitesResult } from '../../lib/protocol/kontrol.js'
import { MemoryStorage } from '../../plugins/kontrol/storage/memory.js'
import { startKontrol } from '../helpers/kontrol.js'

/**
 * Kontrol hands out only kites whose heartbeat is on time: one that has not
 * pinged within one interval of its last heartbeat is left out of `getKites`
 * at once, though it is only removed after interval + grace. Kites are asked
 * to beat every interval − slack, so one on time is never left out. Kontrol's
 * clock and its storage's clock are injected, so no test waits for heartbeats.
 */
t.test('getKites leaves out a kite whose heartbeat is overdue, before it is removed', async (t) => {
  let now = Date.now()
  const clock = (): number => now
  const storage = new MemoryStorage(clock)
  // Interval 10 s, slack 1 s (the default for 10 s: a quarter, at most 1 s), grace 10 s.
  const k = await startKontrol(t, { storage, clock, heartbeatInterval: 10, heartbeatGrace: 10 })
  const base = k.url.replace(/\/kite$/, '')
  const finder = new KiteClient(k.url, { auth: { type: 'kiteKey', key: k.kiteKey('bob') } })
  t.teardown(() => finder.close())
  const find = async (query: Record<string, string>): Promise<string[]> => ((await finder.tell('getKites', { query })) as GetKitesResult).kites.map((x) => x.kite.id)
  await finder.connect()

  // A kite registered over HTTP: its heartbeats are GET /heartbeat, sent here by hand.
  const kite = { username: 'alice', environment: 'test', name: 'http-kite', version: '1.0.0', region: 'eu', hostname: 'h', id: '0b7c4c8e-1d1b-4e0e-9a57-3d2f1f0e6a11' }
  const res = await fetch(`${base}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: 'http://127.0.0.1:1/kite', kite, auth: { type: 'kiteKey', key: k.kiteKey('alice') } }) })
  t.equal(res.status, 200)
  t.equal(((await res.json()) as { heartbeatInterval: number }).heartbeatInterval, 9, 'told to beat every interval − slack: 9 s')
  const heartbeat = async (): Promise<string> => (await fetch(`${base}/heartbeat?id=${kite.id}`)).text()
  t.same(await find({ username: 'alice', name: 'http-kite' }), [kite.id])

  now += 9_000
  t.equal(await heartbeat(), 'pong', 'its heartbeat, on time')
  now += 10_000
  t.same(await find({ username: 'alice', name: 'http-kite' }), [kite.id], 'one interval after its last heartbeat (one missed): still handed out')
  now += 1
  t.same(await find({ username: 'alice', name: 'http-kite' }), [], 'past one interval since its last heartbeat (it froze): no longer handed out')
  await k.app.kontrol.registry.sweep()
  t.not(await storage.get(kite.id), null, 'yet not removed: it may only be slow')
  await t.rejects(finder.tell('getToken', { id: kite.id }), { code: 'KITE_ERR_KONTROL_NO_KITES' }, 'no token for it either')

  t.equal(await heartbeat(), 'pong')
  t.same(await find({ username: 'alice', name: 'http-kite' }), [kite.id], 'its next heartbeat brings it back at once')

  now += 20_001
  await k.app.kontrol.registry.sweep()
  t.equal(await storage.get(kite.id), null, 'silent for interval + grace: removed')
  t.equal(await heartbeat(), 'registeragain')
})

t.test('a kite registered through another Kontrol is judged by its row, which lags one sweep', async (t) => {
  let now = Date.now()
  const clock = (): number => now
  const storage = new MemoryStorage(clock)
  const k = await startKontrol(t, { storage, clock, heartbeatInterval: 10, heartbeatGrace: 10, heartbeatSlack: 1, sweepInterval: 1000 })
  const finder = new KiteClient(k.url, { auth: { type: 'kiteKey', key: k.kiteKey('bob') } })
  t.teardown(() => finder.close())
  await finder.connect()
  const find = async (): Promise<number> => ((await finder.tell('getKites', { query: { username: 'alice' } })) as GetKitesResult).kites.length
  // Written by "another Kontrol": only the row exists, no live registration here.
  const keyId = (await storage.listKeyPairs())[0]!.id
  await storage.upsert({ username: 'alice', environment: 'test', name: 'elsewhere', version: '1.0.0', region: 'eu', hostname: 'h', id: '5d0d6a4e-58a6-4b7a-8d36-7b0b8f9d3c21' }, { url: 'http://127.0.0.1:2/kite', keyId })
  t.equal(await find(), 1)
  now += 11_000
  t.equal(await find(), 1, 'interval + one sweep of lag: still handed out')
  now += 1
  t.equal(await find(), 0, 'beyond that: overdue')
})

t.test('a kite registered over WebSocket is asked to beat every interval − slack (whole seconds), and judged by one interval', async (t) => {
  let now = Date.now()
  const clock = (): number => now
  const k = await startKontrol(t, { storage: new MemoryStorage(clock), clock, heartbeatInterval: 2, heartbeatGrace: 10, heartbeatSlack: 0.5 })
  const asked: number[] = []
  let ping: (() => void) | null = null
  const kite = new KiteClient(k.url, { auth: { type: 'kiteKey', key: k.kiteKey('alice') }, kite: { name: 'ws-kite', environment: 'test' } })
  t.teardown(() => kite.close())
  const pinged = new Promise<void>((resolve) =>
    kite.handle('kite.heartbeat', (req) => {
      asked.push(req.args[0] as number)
      ping = req.args[1] as () => void
      resolve()
      return null
    }),
  )
  await kite.connect()
  await kite.tell('register', { url: 'http://127.0.0.1:3/kite' })
  await pinged
  t.same(asked, [1], 'kite.heartbeat asks for a beat every 1 s (interval 2 s less slack 0.5 s, in whole seconds as Go kites read it)')
  const finder = new KiteClient(k.url, { auth: { type: 'kiteKey', key: k.kiteKey('bob') } })
  t.teardown(() => finder.close())
  await finder.connect()
  const find = async (): Promise<number> => ((await finder.tell('getKites', { query: { username: 'alice', name: 'ws-kite' } })) as GetKitesResult).kites.length
  t.equal(await find(), 1)
  now += 2_000
  t.equal(await find(), 1, 'one interval after registering: still handed out')
  now += 1
  t.equal(await find(), 0, 'no beat for more than one interval (SIGSTOP looks like this): left out')
  // Its ping arrives (the kite woke up): handed out again. The ping is a fire-and-forget callback; wait for its effect.
  ping!()
  for (let i = 0; i < 200 && (await find()) === 0; i++) await new Promise((r) => setImmediate(r))
  t.equal(await find(), 1, 'its next beat brings it back')
})

t.test('heartbeatSlack must be a positive number less than the interval', async (t) => {
  await t.rejects(startKontrol(t, { heartbeatSlack: -1 }), /heartbeatSlack must be a number above 0 \(a positive number\), got -1/)
  await t.rejects(startKontrol(t, { heartbeatInterval: 2, heartbeatSlack: 2 }), /kontrol option heartbeatSlack must be less than heartbeatInterval \(2\), got 2/)
})
