import t from 'tap'
import { BoundedCache } from '../../lib/cache.js'

t.test('keeps at most maxEntries, dropping the least recently used first', async (t) => {
  const c = new BoundedCache<string, number>({ maxEntries: 2 })
  c.set('a', 1)
  c.set('b', 2)
  t.equal(c.get('a'), 1, 'reading a makes b the least recently used')
  c.set('c', 3)
  t.equal(c.size, 2)
  t.equal(c.get('b'), undefined, 'b went')
  t.equal(c.get('a'), 1)
  t.equal(c.get('c'), 3)
  t.equal(c.maxEntries, 2)
})

t.test('entries expire by the injected clock: a per-entry time, or the cache TTL', async (t) => {
  let now = 1_000
  const c = new BoundedCache<string, string>({ maxEntries: 10, ttlMs: 500, clock: () => now })
  c.set('ttl', 'x')
  c.set('own', 'y', now + 100)
  now += 99
  t.equal(c.get('own'), 'y', 'before its own expiry')
  now += 1
  t.equal(c.get('own'), undefined, 'at its own expiry')
  t.equal(c.size, 1, 'an expired entry is dropped when read')
  t.equal(c.get('ttl'), 'x')
  now += 400
  t.equal(c.get('ttl'), undefined, 'after the cache TTL')
})

t.test('without a TTL entries stay until evicted; delete and clear', async (t) => {
  let now = 0
  const c = new BoundedCache<number, string>({ maxEntries: 3, clock: () => now })
  c.set(1, 'one')
  now = Number.MAX_SAFE_INTEGER
  t.equal(c.get(1), 'one')
  c.set(2, 'two')
  c.delete(1)
  t.equal(c.get(1), undefined)
  c.clear()
  t.equal(c.size, 0)
  t.equal(c.get(2), undefined)
})

t.test('a size that is not a positive integer is refused when the cache is made', async (t) => {
  for (const maxEntries of [0, -1, 1.5, NaN]) t.throws(() => new BoundedCache({ maxEntries }), { code: 'KITE_ERR_CONFIG_INVALID', message: /maxEntries must be a positive integer/ }, String(maxEntries))
})
