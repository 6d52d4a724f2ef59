import t from 'tap'
import { Breaker, type BreakerState } from '../../lib/client/breaker.js'
import { leastPendingStrategy, latencyStrategy, makeStrategy, roundRobinStrategy, type PoolKite } from '../../lib/client/strategies.js'

t.test('the breaker counts failures within its window only, and probes after the cool-down', async (t) => {
  let now = 0
  const changes: BreakerState[] = []
  const b = new Breaker({ failures: 3, windowMs: 1000, coolDownMs: 500 }, () => now, (s) => changes.push(s))
  b.failure()
  now = 600
  b.failure()
  now = 1100 // the first failure has left the window
  b.failure()
  t.equal(b.state, 'closed', 'two failures within the window')
  t.equal(b.recentFailures, 2)
  now = 1200
  b.failure()
  t.equal(b.state, 'open', 'three within the window')
  t.notOk(b.probeDue())
  now = 1700
  t.ok(b.probeDue(), 'cool-down over')
  b.probing()
  t.equal(b.state, 'half-open')
  b.failure()
  t.equal(b.state, 'open', 'a failed probe opens it again')
  t.equal(b.openedAt, 1700)
  now = 2200
  b.probing()
  b.success()
  t.equal(b.state, 'closed')
  t.equal(b.recentFailures, 0, 'closing forgets the failures')
  t.same(changes, ['open', 'half-open', 'open', 'half-open', 'closed'])
  t.equal(b.opened, 2)
  t.throws(() => new Breaker({ failures: 0 }, () => 0), /breaker.failures must be a positive number/)
})

const kite = (id: string, pending = 0, latencyMs: number | null = null): PoolKite => ({ id, kite: { username: 'u', environment: 'e', name: 'n', version: '1.0.0', region: 'r', hostname: 'h', id }, url: `http://${id}/kite`, pending, latencyMs, calls: 0 })
const ctx = { method: 'm', args: [] }

t.test('strategies on their own', async (t) => {
  const a = kite('a', 2, 5)
  const b = kite('b', 0, 1)
  const c = kite('c', 1, null)
  const rr = roundRobinStrategy()
  t.same([0, 1, 2, 3, 4, 5].map(() => rr([a, b, c], ctx)!.id), ['a', 'b', 'c', 'a', 'b', 'c'])
  t.same([0, 1, 2].map(() => rr([a, b], ctx)!.id), ['a', 'b', 'a'], 'a shorter list wraps')
  const lp = leastPendingStrategy()
  t.same([0, 1, 2].map(() => lp([a, b, c], ctx)!.id), ['b', 'b', 'b'], 'fewest in flight')
  const tied = [kite('x'), kite('y'), kite('z')]
  t.same([0, 1, 2].map(() => lp(tied, ctx)!.id), ['x', 'y', 'z'], 'ties taken in turn')
  const lat = latencyStrategy(4)
  t.equal(lat([a, b, c], ctx)!.id, 'c', 'a kite not measured yet goes first')
  const measured = [kite('a', 0, 5), kite('b', 3, 1), kite('c', 0, 2)]
  const fresh = latencyStrategy(4)
  t.same([0, 1, 2].map(() => fresh(measured, ctx)!.id), ['c', 'c', 'c'], 'lowest latency × (pending + 1): b is fast but busy')
  t.same([0, 1, 2, 3, 4, 5, 6, 7].map(() => fresh(measured, ctx)!.id), ['a', 'c', 'c', 'c', 'b', 'c', 'c', 'c'], 'every 4th call goes to each kite in turn')
  t.throws(() => makeStrategy('nope' as never), /unknown pool strategy nope/)
})
