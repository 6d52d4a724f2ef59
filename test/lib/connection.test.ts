import t from 'tap'
import { KiteConnection } from '../../lib/connection/connection.js'
import { resolveLimits } from '../../lib/dnode/limits.js'
import { localKite } from '../../lib/protocol/kite.js'
import { silentLogger } from '../../lib/silent-logger.js'
import { FakeTimers } from '../helpers/fake-timers.js'

/** A connection whose sink keeps what it is given, on fake timers. */
function connection(): { conn: KiteConnection; sent: string[]; timers: FakeTimers } {
  const sent: string[] = []
  const timers = new FakeTimers()
  const conn = new KiteConnection({
    sink: { send: (text) => sent.push(text), close: () => {} },
    handler: { handleCall: () => {} },
    limits: resolveLimits(),
    log: silentLogger(),
    localKite: localKite({ name: 'client', version: '1.0.0' }),
    defaultTimeout: 15_000,
    transport: 'test',
    timers,
  })
  return { conn, sent, timers }
}

t.test('the heartbeat pings now and at every interval on the injected timers, until the connection closes', async (t) => {
  const { conn, timers } = connection()
  let pings = 0
  conn.setHeartbeat(1000, () => pings++)
  t.equal(pings, 1, 'at once')
  timers.advance(3000)
  t.equal(pings, 4)
  conn.close()
  timers.advance(5000)
  t.equal(pings, 4, 'no ping after the close')
  t.equal(timers.active, 0, 'no timer left')
})

t.test('the default timeout fails a call, on the injected timers; a late answer is dropped', async (t) => {
  const { conn, sent, timers } = connection()
  const call = conn.tell('slow', [1])
  t.equal(sent.length, 1)
  timers.advance(15_000 + 500)
  await t.rejects(call, { name: 'KiteError', code: 'KITE_ERR_CALL_TIMEOUT', message: 'No response to "slow" method in 15000ms' })
  conn.receive('{"method":0,"arguments":[{"error":null,"result":2}],"callbacks":{}}')
  t.equal(conn.pendingCalls, 0)
  t.notOk(conn.closed, 'a late answer is no protocol error')
})

t.test('an answer in either form settles its call; an expired token is told apart from other failures', async (t) => {
  const { conn } = connection()
  const a = conn.tell('a')
  const b = conn.tell('b')
  const c = conn.tell('c')
  const expired: unknown[] = []
  conn.on('tokenExpired', (err) => expired.push(err))
  conn.receive('{"method":0,"arguments":[{"error":null,"result":16}],"callbacks":{}}')
  conn.receive('{"method":1,"arguments":[null,"j-style"],"callbacks":{}}')
  conn.receive('{"method":2,"arguments":[{"error":{"type":"authenticationError","message":"token: token is expired by 1m5s","code":"","id":"9f1c2a7b03de4c55"},"result":null}],"callbacks":{}}')
  t.equal(await a, 16)
  t.equal(await b, 'j-style')
  const failed = (await c.catch((err: unknown) => err)) as { type: string; remote: boolean }
  t.match(failed, { type: 'authenticationError', remote: true })
  t.equal(expired.length, 1, 'tokenExpired fired once')
})
