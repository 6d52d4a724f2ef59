import t from 'tap'
import { runKite } from './helpers/child.js'
import { join } from 'node:path'
import { writeKiteKey } from '../lib/kitekey.js'
import { startKontrol, startRegisteredKite } from './helpers/kontrol.js'


const kite = runKite

t.setTimeout(480_000)

t.test('kite tell QUERY goes through a pool: failover past a dead kite, --strategy, errors naming the kites tried', async (t) => {
  // Heartbeats every 60 s: the dead registration below stays listed for the whole test.
  const k = await startKontrol(t, { heartbeatInterval: 60, heartbeatGrace: 60 })
  const home = join(t.testdir(), 'home')
  await writeKiteKey(k.kiteKey('alice'), join(home, 'kite.key'))
  const live = await startRegisteredKite(t, k.url, k.kiteKey('alice'), { name: 'math' })
  const liveId = live.app.kite.identity.id
  live.app.kite.handle('whoami', () => liveId).disableAuthentication()
  // A kite listed by Kontrol whose address answers nothing (its host is gone).
  const dead = { username: 'alice', environment: 'test', name: 'math', version: '1.0.0', region: 'eu', hostname: 'gone', id: '7f9c1a52-3b0e-4d6f-8a21-5c4e2b9d0f13' }
  const res = await fetch(`${k.url.replace(/\/kite$/, '')}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: 'http://127.0.0.1:1/kite', kite: dead, auth: { type: 'kiteKey', key: k.kiteKey('alice') } }) })
  t.equal(res.status, 200)
  const listed = JSON.parse((await kite(['query', '/alice/test/math', '--json'], home)).stdout) as unknown[]
  t.equal(listed.length, 2, 'Kontrol lists the live kite and the dead one')

  // Kontrol lists the two in random order: over 5 calls the dead one comes first about half the time; every call answers.
  for (const strategy of [undefined, 'random', 'round-robin', 'least-pending', 'latency']) {
    const run = await kite(['tell', '/alice/test/math', 'whoami', ...(strategy === undefined ? [] : ['--strategy', strategy])], home)
    t.equal(run.code, 0, run.stderr)
    t.equal(run.stdout, `${JSON.stringify(liveId)}\n`, `answered by the live kite (${strategy ?? 'default'})`)
  }

  // kite ping QUERY goes through the same pool: past the dead kite whichever order Kontrol lists them in.
  for (let i = 0; i < 3; i++) {
    const pinged = await kite(['ping', '/alice/test/math'], home)
    t.equal(pinged.code, 0, pinged.stderr)
    t.match(pinged.stdout, /^pong from \/alice\/test\/math in \d+\.\d ms\n$/, 'kite ping QUERY answers')
  }
  const pingDead = await kite(['ping', `/alice/test/math/1.0.0/eu/gone/${dead.id}`], home)
  t.equal(pingDead.code, 1)
  t.match(pingDead.stderr, new RegExp(`^kite ping: sendError: no kite could take "kite.ping": tried ${dead.id} at http://127\\.0\\.0\\.1:1/kite: cannot connect`))

  const onlyDead = await kite(['tell', `/alice/test/math/1.0.0/eu/gone/${dead.id}`, 'whoami'], home)
  t.equal(onlyDead.code, 1)
  t.match(onlyDead.stderr, new RegExp(`^kite tell: sendError: no kite could take "whoami": tried ${dead.id} at http://127\\.0\\.0\\.1:1/kite: cannot connect to http://127\\.0\\.0\\.1:1/kite: .*\\n$`))
  const none = await kite(['tell', '/alice/test/nothing', 'whoami'], home)
  t.equal(none.code, 1)
  t.equal(none.stderr, 'kite tell: sendError: no kites found for /alice/test/nothing\n')

  const badStrategy = await kite(['tell', '/alice/test/math', 'whoami', '--strategy', 'fastest'], home)
  t.equal(badStrategy.code, 2)
  t.match(badStrategy.stderr, /--strategy must be one of random, round-robin, least-pending, latency/)
  t.equal((await kite(['tell', live.url, 'whoami', '--strategy', 'random'], home)).code, 2, '--strategy needs a query')
  const help = await kite(['tell', '--help'], home)
  t.match(help.stdout, /--strategy S/)
})
