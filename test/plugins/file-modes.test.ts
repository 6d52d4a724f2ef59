import t from 'tap'
import Fastify from 'fastify'
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { kontrol } from '../../plugins/kontrol/index.js'
import { SqliteStorage } from '../../plugins/kontrol/storage/sqlite.js'
import { kiteKeyPath, writeKiteKey } from '../../lib/kitekey.js'

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777

t.test('the embedded Kontrol keeps its private keys in a 0600 kontrol.db in a 0700 KITE_HOME; kite.key is 0600', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'kite-modes-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const home = join(root, 'fresh', 'home')
  const saved = process.env.KITE_HOME
  process.env.KITE_HOME = home
  t.teardown(() => {
    if (saved === undefined) delete process.env.KITE_HOME
    else process.env.KITE_HOME = saved
  })
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'kontrol', version: '0.0.1', username: 'operator' })
  await app.register(kiteAuth, { kiteKey: false })
  await app.register(kontrol)
  await app.listen({ port: 0, host: '127.0.0.1' })
  // The key pair is in the file now; write more so that SQLite's side files exist.
  await writeKiteKey(app.kontrol.service.issueKiteKey('alice'), kiteKeyPath())
  await app.kontrol.storage.upsert({ username: 'alice', environment: 'e', name: 'n', version: '1.0.0', region: 'r', hostname: 'h', id: 'id-1' }, { url: 'http://127.0.0.1:1/kite', keyId: app.kontrol.keys.current.id })
  t.equal(await mode(home), 0o700, 'KITE_HOME')
  t.equal(await mode(join(home, 'kontrol.db')), 0o600, 'kontrol.db')
  t.equal(await mode(join(home, 'kite.key')), 0o600, 'kite.key')
  for (const side of ['-wal', '-shm', '-journal']) {
    const p = join(home, 'kontrol.db' + side)
    if (existsSync(p)) t.equal(await mode(p), 0o600, `kontrol.db${side}`)
  }
})

t.test('an existing kontrol.db (and its WAL) readable by others is made 0600 when opened', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kite-modes-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'kontrol.db')
  await new SqliteStorage(path).close()
  await chmod(path, 0o644)
  await writeFile(path + '-wal', '')
  await chmod(path + '-wal', 0o644)
  const s = new SqliteStorage(path)
  t.teardown(() => s.close())
  t.equal(await mode(path), 0o600)
  t.equal(await mode(path + '-wal'), 0o600)
})
