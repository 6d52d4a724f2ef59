import t from 'tap'
import { KiteError } from '../../lib/errors.js'
import { PendingCall, PendingCalls, SWEEP_MS } from '../../lib/connection/pending.js'
import { FakeTimers as FakeClock } from '../helpers/fake-timers.js'

interface Outcome {
  value?: unknown
  error?: KiteError
}

function call(method: string, timeout: number): { call: PendingCall; outcome: Outcome } {
  const outcome: Outcome = {}
  return {
    call: new PendingCall(method, timeout, (value) => (outcome.value = value), (error) => (outcome.error = error)),
    outcome,
  }
}

t.test('an answered call leaves the table and its timer is cleared', async (t) => {
  const clock = new FakeClock()
  const table = new PendingCalls(clock)
  const c = call('square', 500)
  table.add(7, c.call)
  t.equal(table.size, 1)
  t.equal(clock.active, 1)
  const taken = table.take(7)
  t.equal(taken, c.call)
  taken!.resolve(16)
  t.equal(table.size, 0)
  t.equal(clock.active, 0, 'no timer left behind')
  t.equal(table.take(7), undefined, 'a second answer finds nothing')
  clock.advance(10_000)
  t.same(c.outcome, { value: 16 }, 'no timeout after the answer')
})

t.test('a short timeout fails the call with a timeout error when its own timer fires', async (t) => {
  const clock = new FakeClock()
  const table = new PendingCalls(clock)
  const c = call('slow', 500)
  table.add(1, c.call)
  clock.advance(499)
  t.equal(c.outcome.error, undefined, 'not before the timeout')
  clock.advance(1)
  t.match(c.outcome.error, { type: 'timeout', code: 'KITE_ERR_CALL_TIMEOUT', message: 'No response to "slow" method in 500ms' })
  t.equal(table.size, 0)
  t.equal(table.take(1), undefined, 'a late answer finds nothing')
})

t.test('a long timeout is checked by the sweep: never early, at most two sweeps late', async (t) => {
  const clock = new FakeClock()
  const table = new PendingCalls(clock)
  clock.advance(100)
  const c = call('slow', 15_000)
  table.add(1, c.call)
  t.equal(clock.active, 1, 'one sweep, no timer per call')
  const other = call('other', 15_000)
  table.add(2, other.call)
  t.equal(clock.active, 1, 'the calls share the sweep')
  clock.advance(15_000 - 1)
  t.equal(c.outcome.error, undefined, 'not before 15 s')
  clock.advance(2 * SWEEP_MS)
  t.match(c.outcome.error, { type: 'timeout', code: 'KITE_ERR_CALL_TIMEOUT' })
  t.match(other.outcome.error, { type: 'timeout' })
  t.equal(table.size, 0)
  t.equal(clock.active, 0, 'the sweep stops once nothing waits')
})

t.test('the sweep keeps running while a long call waits, and starts again for a later one', async (t) => {
  const clock = new FakeClock()
  const table = new PendingCalls(clock)
  const first = call('a', 3000)
  table.add(1, first.call)
  clock.advance(1000)
  const second = call('b', 3000)
  table.add(2, second.call)
  clock.advance(2000 + 2 * SWEEP_MS)
  t.ok(first.outcome.error, 'the first timed out')
  t.equal(second.outcome.error, undefined, 'the second still waits')
  t.equal(clock.active, 1)
  clock.advance(1000)
  t.ok(second.outcome.error, 'then the second')
  t.equal(clock.active, 0)
  const third = call('c', 2000)
  table.add(3, third.call)
  t.equal(clock.active, 1, 'a new sweep')
  clock.advance(2000 + 2 * SWEEP_MS)
  t.ok(third.outcome.error)
})

t.test('timeout 0 waits until failAll, which fails every call and clears every timer', async (t) => {
  const clock = new FakeClock()
  const table = new PendingCalls(clock)
  const forever = call('forever', 0)
  const short = call('short', 100)
  const long = call('long', 5000)
  table.add(1, forever.call)
  table.add(2, short.call)
  table.add(3, long.call)
  t.equal(clock.active, 2, 'a timer for the short call, the sweep for the long one, nothing for timeout 0')
  table.failAll(() => new KiteError('disconnect', 'gone', 'KITE_ERR_DISCONNECTED'))
  for (const c of [forever, short, long]) t.match(c.outcome.error, { type: 'disconnect', code: 'KITE_ERR_DISCONNECTED' })
  t.not(forever.outcome.error, short.outcome.error, 'each call gets its own error')
  t.equal(table.size, 0)
  t.equal(clock.active, 0)
})

t.test('many calls in flight, and one that waits while thousands of newer ones come and go, are all found', async (t) => {
  const clock = new FakeClock()
  const table = new PendingCalls(clock)
  const old = call('old', 0)
  table.add(0, old.call)
  let lost = 0
  for (let id = 1; id <= 20_000; id++) {
    const c = call('quick', 0)
    table.add(id, c.call)
    if (id > 100 && table.take(id - 100)?.id !== id - 100) lost++ // a window of 100 in flight
  }
  t.equal(lost, 0, 'every answered call was found')
  t.equal(table.size, 101, 'the old call and the window')
  t.equal(table.take(0), old.call, 'the old call is still found (it moved out of its slot)')
  t.equal(table.take(0), undefined)
  const many = Array.from({ length: 5000 }, () => call('burst', 0))
  many.forEach((c, i) => table.add(30_000 + i, c.call))
  t.equal(table.size, 5100)
  t.equal(table.take(34_999), many.at(-1)!.call)
  table.failAll(() => new KiteError('disconnect', 'gone', 'KITE_ERR_DISCONNECTED'))
  t.equal(table.size, 0)
  t.ok(many.slice(0, -1).every((c) => c.outcome.error?.code === 'KITE_ERR_DISCONNECTED'), 'every call still waiting failed once')
  t.equal(many.at(-1)!.outcome.error, undefined, 'the one taken before did not')
})
