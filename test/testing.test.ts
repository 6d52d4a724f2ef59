import t from 'tap'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import { kiteAuth } from '../plugins/kite-auth/index.js'
import { kiteServer } from '../plugins/kite-server/index.js'
import { kontrolRegister } from '../plugins/kontrol-register/index.js'
import { KiteClient } from '../lib/client/client.js'
import { decodeKiteKey, readKiteKey } from '../lib/kitekey.js'
import { startTestKontrol, testKeyPair } from '../testing.js'

t.test('testKeyPair: one RSA pair per process, or a fresh one when asked', async (t) => {
  const a = testKeyPair()
  t.match(a.publicKey, /^-----BEGIN PUBLIC KEY-----\n/)
  t.match(a.privateKey, /^-----BEGIN PRIVATE KEY-----\n/)
  t.equal(testKeyPair(), a, 'cached')
  t.not(testKeyPair({ fresh: true }).publicKey, a.publicKey, 'fresh')
})

t.test('startTestKontrol: a Kontrol in one call; kite.keys it signs; a kite registers, is found, and trusts its tokens', async (t) => {
  const k = await startTestKontrol()
  t.teardown(() => k.close())
  t.match(k.url, /^http:\/\/127\.0\.0\.1:\d+\/kite$/)
  t.equal(k.keyPair.publicKey.trim(), testKeyPair().publicKey.trim(), 'signs with the shared test pair')
  const claims = decodeKiteKey(k.kiteKey('alice'))
  t.match(claims, { sub: 'alice', iss: 'testuser', kontrolURL: k.url })
  const home = t.testdir()
  const path = await k.writeKiteKey('bob', home)
  t.equal(path, join(home, 'kite.key'))
  t.equal(statSync(path).mode & 0o777, 0o600, 'kite.key is 0600')
  t.equal(decodeKiteKey(await readKiteKey(path)).sub, 'bob')

  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0', closeGraceMs: 100 })
  await app.register(kiteAuth, { kiteKey: k.kiteKey('alice') })
  await app.register(kontrolRegister, { kontrolURL: k.url, kiteKey: k.kiteKey('alice') })
  app.kite.handle('whoami', (req) => req.username)
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.kontrolRegister.ready
  const token = await k.token({ username: 'alice', name: 'math' }, 'carol')
  const [found] = await app.kite.getKites({ username: 'alice', name: 'math' })
  t.ok(found, 'found through the Kontrol')
  const client = new KiteClient(found!.url, { auth: { type: 'token', key: token } })
  t.teardown(() => client.close())
  await client.connect()
  t.equal(await client.tell('whoami'), 'carol', "a token from k.token() authenticates with the kite's own trust")
  await client.close()
  await app.close()
  await k.close()
  await t.rejects(new KiteClient(k.url, { connectTimeout: 5000 }).connect(), { name: 'KiteError', type: 'sendError' }, 'closed: nothing listens any more')
})

t.test('app.kite.inject: a call through the whole pipeline without a socket', async (t) => {
  const k = await startTestKontrol()
  t.teardown(() => k.close())
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0' })
  await app.register(kiteAuth, { kiteKey: k.kiteKey('alice') })
  app.kite.handle('square', (req) => (req.args[0] as number) ** 2).disableAuthentication()
  app.kite
    .handle('countdown', async (req) => {
      const [n, onTick] = req.args as [number, (i: number) => Promise<unknown>]
      for (let i = n; i > 0; i--) await onTick(i)
      return 'done'
    })
    .disableAuthentication()
  app.kite.handle('whoami', (req) => `${req.username} (${req.kite.name})`)
  app.kite.handle('fail', () => {
    throw new Error('it broke')
  }).disableAuthentication()
  await app.ready()

  t.equal(await app.kite.inject('square', 4), 16)
  const ticks: number[] = []
  t.equal(await app.kite.inject('countdown', 3, (i: number) => ticks.push(i)), 'done')
  t.same(ticks, [3, 2, 1], 'callbacks cross the in-memory connection')
  await t.rejects(app.kite.inject('whoami'), { name: 'KiteError', type: 'authenticationError' }, 'authentication applies as on a socket')
  t.equal(await app.kite.inject({ method: 'whoami', auth: { type: 'kiteKey', key: k.kiteKey('dave') }, kite: { name: 'tester' } }), 'dave (tester)', 'with credentials and a caller identity')
  await t.rejects(app.kite.inject('nope'), { type: 'methodNotFound', message: 'Method not found: nope' })
  await t.rejects(app.kite.inject('fail'), { type: 'genericError', message: 'it broke' })
  app.kite.handle('slow', () => new Promise(() => {})).disableAuthentication()
  await t.rejects(app.kite.inject({ method: 'slow', timeout: 50 }), { name: 'KiteError', type: 'timeout' }, 'its own timeout')
  t.equal(app.kite.connections.size, 0, 'no connection is left behind')
  await app.close()
  await t.rejects(app.kite.inject('square', 2), { name: 'KiteError', type: 'sendError' }, 'refused once the app is closing')
})
