import t from 'tap'
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KiteError } from '../../lib/errors.js'
import { decodeKiteKey, findKiteKey, kiteHome, kiteKeyPath, readKiteKey, writeKiteKey } from '../../lib/kitekey.js'
import { KiteClient } from '../../lib/client/client.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { startKite } from '../helpers/server.js'
import { makeKontrol } from '../helpers/tokens.js'

const kontrol = makeKontrol('root-kontrol')

t.test('kite.key is found in $KITE_HOME, else ~/.kite', async (t) => {
  t.equal(kiteKeyPath({ KITE_HOME: '/srv/kite' }), '/srv/kite/kite.key')
  t.match(kiteHome({}), /\.kite$/)
  t.match(kiteKeyPath({ KITE_HOME: '' }), /\.kite\/kite\.key$/)
})

t.test('write then read: folder 0700, file 0600, claims decoded', async (t) => {
  const dir = join(t.testdir(), 'home', 'nested')
  const path = join(dir, 'kite.key')
  const key = kontrol.kiteKey('alice')
  await writeKiteKey(key, path)
  t.equal((await stat(dir)).mode & 0o777, 0o700)
  t.equal((await stat(path)).mode & 0o777, 0o600)
  t.equal(await readKiteKey(path), key)
  const claims = decodeKiteKey(key)
  t.match(claims, { iss: 'root-kontrol', sub: 'alice', kontrolURL: 'http://127.0.0.1:4000/kite' })
  t.equal(claims.kontrolKey, kontrol.publicKey.trim())
  await writeKiteKey(kontrol.kiteKey('bob'), path)
  t.equal(decodeKiteKey(await readKiteKey(path)).sub, 'bob', 'an existing key is replaced')
})

t.test('clear errors for a missing, unreadable or malformed kite.key', async (t) => {
  const dir = t.testdir({ 'garbage.key': 'not-a-jwt', 'empty.key': '   \n', 'nosub.key': `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{"iss":"k"}').toString('base64url')}.sig` })
  await t.rejects(readKiteKey(join(dir, 'missing.key')), { code: 'KITE_ERR_KITEKEY_MISSING', message: /no kite.key at/ })
  t.equal(await findKiteKey(join(dir, 'missing.key')), null, 'findKiteKey: none is not an error')
  await t.rejects(readKiteKey(join(dir, 'garbage.key')), { code: 'KITE_ERR_KITEKEY_MALFORMED', message: 'malformed kite.key: token must have 3 parts' })
  await t.rejects(readKiteKey(join(dir, 'empty.key')), { code: 'KITE_ERR_KITEKEY_MALFORMED' })
  await t.rejects(readKiteKey(join(dir, 'nosub.key')), { message: 'malformed kite.key: missing claim sub' })
  await t.rejects(readKiteKey(dir), { code: 'KITE_ERR_KITEKEY_UNREADABLE' }, 'a folder is unreadable as a key')
  if (process.getuid?.() !== 0) {
    const locked = join(dir, 'locked.key')
    await writeFile(locked, kontrol.kiteKey('x'))
    await chmod(locked, 0)
    await t.rejects(readKiteKey(locked), { code: 'KITE_ERR_KITEKEY_UNREADABLE' })
  }
  await t.rejects(writeKiteKey('nope', join(dir, 'w.key')), KiteError)
})

t.test('KiteClient sends the kite.key found in KITE_HOME as kiteKey authentication', async (t) => {
  const home = t.testdir()
  await mkdir(home, { recursive: true })
  await writeKiteKey(kontrol.kiteKey('erin'), join(home, 'kite.key'))
  const { url } = await startKite(t, {}, async (app) => {
    await app.register(kiteAuth, { trustedKontrolKeys: [kontrol.publicKey], kiteKey: false })
    app.kite.handle('whoami', (req) => req.username)
  })
  const client = new KiteClient(url, { auth: { type: 'kiteKey' }, kiteHome: home })
  t.teardown(() => client.close())
  await client.connect()
  t.equal(await client.tell('whoami'), 'erin')
  const missing = new KiteClient(url, { auth: { type: 'kiteKey' }, kiteHome: join(home, 'none') })
  await t.rejects(missing.connect(), { code: 'KITE_ERR_KITEKEY_MISSING' })
})
