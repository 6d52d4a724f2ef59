import t from 'tap'
import Fastify from 'fastify'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { kitePool, type StandalonePoolOptions } from '../../lib/client/finder.js'
import { KitePoolError, type KitePool } from '../../lib/client/pool.js'
import { KiteClient } from '../../lib/client/client.js'
import type { KontrolQuery } from '../../lib/protocol/kontrol.js'
import { startKontrol, startRegisteredKite } from '../helpers/kontrol.js'
import { once } from '../helpers/server.js'

type Teardown = Parameters<typeof startKontrol>[0]

/**
 * Pools over real kites registered with a real Kontrol (all in this process,
 * real sockets). Kontrol's heartbeat is 5 s here so that no kite's heartbeat
 * falls overdue on a busy machine and membership stays what the test set up.
 */
async function fleet(t: Teardown, n: number, delays: number[] = []) {
  const k = await startKontrol(t, { heartbeatInterval: 5, heartbeatGrace: 5 })
  const kites = []
  for (let i = 0; i < n; i++) kites.push(await worker(t, k.url, k.kiteKey('alice'), delays[i] ?? 0))
  return { k, kites }
}

/** A registered kite whose `whoami` answers its id after `delay` ms; `hang` never answers; counts what it ran. */
async function worker(t: Teardown, kontrolURL: string, key: string, delay = 0, name = 'worker') {
  const kite = await startRegisteredKite(t, kontrolURL, key, { name })
  const id = kite.app.kite.identity.id
  const ran = { whoami: 0, hang: 0 }
  kite.app.kite
    .handle('whoami', async () => {
      ran.whoami++
      if (delay > 0) await new Promise((r) => setTimeout(r, delay))
      return id
    })
    .disableAuthentication()
  kite.app.kite.handle('hang', () => {
    ran.hang++
    return new Promise(() => {})
  })
  return { ...kite, id, ran }
}

function pool(t: Teardown, kontrolURL: string, key: string, query: KontrolQuery, options: Partial<StandalonePoolOptions> = {}): KitePool {
  const p = kitePool(query, { kontrolURL, auth: { type: 'kiteKey', key }, ...options })
  t.teardown(() => p.close())
  return p
}

/** Runs `total` calls, `inFlight` at a time; resolves with how many each kite id answered, and the order. */
async function spread(p: KitePool, total: number, inFlight: number, method = 'whoami'): Promise<{ counts: Map<string, number>; order: string[] }> {
  const counts = new Map<string, number>()
  const order: string[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) {
        next++
        const id = (await p.tell(method)) as string
        order.push(id)
        counts.set(id, (counts.get(id) ?? 0) + 1)
      }
    }),
  )
  return { counts, order }
}

/** Resolves when the kite's circuit reaches `state`. */
function breakerState(p: KitePool, id: string, state: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (kite: { id: string }, s: string): void => {
      if (kite.id !== id || s !== state) return
      p.off('breaker', on)
      resolve()
    }
    p.on('breaker', on)
  })
}

t.setTimeout(180_000)

const query = { username: 'alice', environment: 'test', name: 'worker' }

t.test('round-robin: 1,000 calls over 3 kites, exactly in turn', async (t) => {
  const { k, kites } = await fleet(t, 3)
  const p = pool(t, k.url, k.kiteKey('bob'), query, { strategy: 'round-robin', refreshInterval: 0 })
  await p.ready
  t.equal(p.kites.length, 3)
  const { counts, order } = await spread(p, 1000, 1)
  t.same([...counts.values()].sort(), [333, 333, 334], 'counts')
  t.ok(order.every((id, i) => i < 3 || id === order[i - 3]), 'each kite in turn, the same order every round')
  for (const kite of kites) t.equal(kite.ran.whoami, counts.get(kite.id), 'each kite ran what the pool says it answered')
  t.equal(p.stats().calls, 1000)
})

t.test('random: 1,000 calls spread within binomial bounds, not in turn', async (t) => {
  const { k, kites } = await fleet(t, 3)
  const p = pool(t, k.url, k.kiteKey('bob'), query, { refreshInterval: 0 })
  const { counts, order } = await spread(p, 1000, 8)
  for (const kite of kites) {
    const n = counts.get(kite.id) ?? 0
    // mean 333, sd 15: ±5 sd
    t.ok(n >= 258 && n <= 408, `kite ${kite.id.slice(0, 8)} got ${n} calls`)
  }
  const inTurn = order.filter((id, i) => i > 0 && order[i - 1] !== id).length
  t.ok(inTurn < 900, `consecutive calls often repeat a kite (${999 - inTurn} repeats), as random choice does`)
})

t.test('least-pending: the idle kites take the calls a busy one cannot', async (t) => {
  // kite 0 takes 25 ms per call, the others answer at once: with 16 calls in flight its calls pile up.
  const { k, kites } = await fleet(t, 3, [25, 0, 0])
  const p = pool(t, k.url, k.kiteKey('bob'), query, { strategy: 'least-pending', refreshInterval: 0 })
  const { counts } = await spread(p, 1000, 16)
  const busy = counts.get(kites[0]!.id) ?? 0
  t.ok(busy < 150, `the busy kite got ${busy} of 1000 calls (round-robin would give it 333)`)
  for (const idle of kites.slice(1)) t.ok((counts.get(idle.id) ?? 0) > 400, `an idle kite got ${counts.get(idle.id)}`)

  // The same fleet with round-robin, for contrast: the busy kite gets its third.
  const rr = pool(t, k.url, k.kiteKey('bob'), query, { strategy: 'round-robin', refreshInterval: 0 })
  const even = await spread(rr, 300, 16)
  t.equal(even.counts.get(kites[0]!.id), 100, 'round-robin ignores how busy a kite is')
})

t.test('latency: the fast kite takes most calls', async (t) => {
  const { k, kites } = await fleet(t, 3, [0, 15, 15])
  const p = pool(t, k.url, k.kiteKey('bob'), query, { strategy: 'latency', refreshInterval: 0 })
  const { counts } = await spread(p, 1000, 1)
  const fast = counts.get(kites[0]!.id) ?? 0
  t.ok(fast > 850, `the fast kite got ${fast} of 1000 calls`)
  for (const slow of kites.slice(1)) t.ok((counts.get(slow.id) ?? 0) > 0, 'slow kites are still measured now and then')
  const stats = p.stats().kites
  const fastStats = stats.find((s) => s.id === kites[0]!.id)!
  const slowStats = stats.find((s) => s.id === kites[1]!.id)!
  t.ok(fastStats.latencyMs! < slowStats.latencyMs!, `moving averages: fast ${fastStats.latencyMs?.toFixed(2)} ms, slow ${slowStats.latencyMs?.toFixed(2)} ms`)
})

t.test('a custom strategy chooses; one returning a stranger fails the call', async (t) => {
  const { k, kites } = await fleet(t, 3)
  const chosen = kites[1]!.id
  const seen: string[] = []
  const p = pool(t, k.url, k.kiteKey('bob'), query, {
    refreshInterval: 0,
    strategy: (list, ctx) => {
      seen.push(ctx.method)
      return list.find((x) => x.id === chosen)
    },
  })
  for (let i = 0; i < 20; i++) t.equal(await p.tell('whoami'), chosen)
  t.equal(seen.length, 20)
  t.ok(seen.every((m) => m === 'whoami'), 'the strategy sees the method')
  const bad = pool(t, k.url, k.kiteKey('bob'), query, { refreshInterval: 0, strategy: () => ({ id: 'x', kite: kites[0]!.app.kite.identity, url: '', pending: 0, latencyMs: null, calls: 0 }) })
  await t.rejects(bad.tell('whoami'), { name: 'TypeError', message: /not among those given/ })
  const none = pool(t, k.url, k.kiteKey('bob'), query, { refreshInterval: 0, strategy: () => undefined })
  await t.rejects(none.tell('whoami'), { code: 'KITE_ERR_POOL_UNAVAILABLE', message: 'no kite could take "whoami": the strategy chose none of 3 kites' })
  t.throws(() => kitePool(query, { kontrolURL: k.url, strategy: 'fastest' as never }), /unknown pool strategy fastest/)
})

t.test('failover and the circuit breaker: a kite that went away is skipped, probed after the cool-down, taken back when it answers', async (t) => {
  const { k, kites } = await fleet(t, 2)
  let now = 1_000_000
  const [a, b] = kites as [(typeof kites)[number], (typeof kites)[number]]
  // No watch and no refresh: the pool keeps b although it is gone, as it would between refreshes.
  const p = pool(t, k.url, k.kiteKey('bob'), query, {
    strategy: 'round-robin',
    watch: false,
    refreshInterval: 0,
    clock: () => now,
    breaker: { failures: 3, windowMs: 10_000, coolDownMs: 5_000 },
  })
  const states: string[] = []
  p.on('breaker', (kite, state) => kite.id === b.id && states.push(state))
  await p.ready
  const up = new Set([await p.tell('whoami'), await p.tell('whoami')])
  t.same([...up].sort(), [a.id, b.id].sort(), 'both kites answer while b is up')
  const port = Number(new URL(b.url).port)
  await b.app.close()

  for (let i = 0; i < 10; i++) t.equal(await p.tell('whoami'), a.id, `call ${i}: answered by a`)
  let bs = p.stats().kites.find((s) => s.id === b.id)!
  t.equal(bs.state, 'open', 'three failures in the window opened b')
  t.equal(bs.failures, 3, 'and b was not tried again once open')
  t.equal(p.stats().failovers, 3, 'the three calls that met b went to a')
  t.same(states, ['open'])

  now += 5_000
  const reopened = breakerState(p, b.id, 'open')
  t.equal(await p.tell('whoami'), a.id, 'the call itself goes to a healthy kite while b is probed')
  t.same(states.slice(0, 2), ['open', 'half-open'], 'the cool-down is over: one probe')
  await reopened
  bs = p.stats().kites.find((s) => s.id === b.id)!
  t.equal(bs.state, 'open', 'the probe (kite.ping) failed: open again')
  t.equal(bs.opened, 2)

  // b comes back at the same address (not registered: the pool still holds it).
  const back = Fastify({ logger: false })
  t.teardown(() => back.close())
  await back.register(kiteServer, { name: 'worker', version: '1.0.0', environment: 'test', id: b.id })
  back.kite.handle('whoami', () => b.id).disableAuthentication()
  await back.listen({ port, host: '127.0.0.1' })
  now += 4_000
  await p.tell('whoami')
  t.equal(p.stats().kites.find((s) => s.id === b.id)!.state, 'open', 'no probe before the cool-down is over')
  now += 1_000
  const closed = breakerState(p, b.id, 'closed')
  await p.tell('whoami')
  await closed
  t.same(states, ['open', 'half-open', 'open', 'half-open', 'closed'])
  const answered = new Set<string>()
  for (let i = 0; i < 4; i++) answered.add((await p.tell('whoami')) as string)
  t.same([...answered].sort(), [a.id, b.id].sort(), 'b takes calls again')
})

t.test('errors say which kites were tried; a sent call is retried only when idempotent', async (t) => {
  const { k, kites } = await fleet(t, 3)
  const p = pool(t, k.url, k.kiteKey('bob'), query, { strategy: 'round-robin', refreshInterval: 0 })

  const lost = (await p.call('hang', [], { timeout: 300 }).catch((e: unknown) => e)) as KitePoolError
  t.type(lost, KitePoolError)
  t.equal(lost.type, 'timeout')
  t.equal(lost.code, 'KITE_ERR_CALL_TIMEOUT')
  t.equal(lost.sent, true)
  t.equal(lost.tried.length, 1)
  t.match(lost.message, /sent to .* at http:\/\/127\.0\.0\.1:\d+\/kite; not retried: "hang" is not idempotent/)
  t.equal(kites.reduce((n, x) => n + x.ran.hang, 0), 1, 'a non-idempotent call ran once, on one kite')

  const all = (await p.call('hang', [], { timeout: 300, idempotent: true }).catch((e: unknown) => e)) as KitePoolError
  t.equal(all.code, 'KITE_ERR_POOL_UNAVAILABLE')
  t.equal(all.type, 'sendError')
  t.equal(all.tried.length, 3, 'an idempotent call went to each kite in turn')
  t.ok(all.tried.every((a) => a.sent), 'and each attempt was sent')
  for (const x of kites) t.match(all.message, x.id, 'the message names every kite tried')
  t.equal(kites.reduce((n, x) => n + x.ran.hang, 0), 4)

  // An answer (a handler's error) is the call's answer: never retried elsewhere.
  await t.rejects(p.tell('noSuchMethod'), { name: 'KiteError', type: 'methodNotFound' })
  t.equal(p.stats().failovers, 2, 'only the idempotent call failed over')

  // Nothing reachable: every kite is tried, none was sent the call.
  for (const x of kites) await x.app.close()
  const emptyPool = pool(t, k.url, k.kiteKey('bob'), query)
  await t.rejects(emptyPool.tell('whoami'), { code: 'KITE_ERR_POOL_NO_KITES', message: 'no kites found for /alice/test/worker' })
})

t.test('a pool call that cannot reach any kite lists them, none sent', async (t) => {
  const { k, kites } = await fleet(t, 2)
  const p = pool(t, k.url, k.kiteKey('bob'), query, { watch: false, refreshInterval: 0 })
  await p.ready
  for (const x of kites) await x.app.close()
  const err = (await p.tell('whoami').catch((e: unknown) => e)) as KitePoolError
  t.equal(err.code, 'KITE_ERR_POOL_UNAVAILABLE')
  t.equal(err.tried.length, 2)
  t.ok(err.tried.every((a) => !a.sent && /cannot connect|Could not connect/.test(a.error.message)))
  t.match(err.message, /^no kite could take "whoami": tried /)
  for (const x of kites) t.match(err.message, `${x.id} at ${x.url}`, 'names each kite and its URL')
})

t.test('a kite registered mid-run gets calls without restarting the pool (app.kite.pool, watch only)', async (t) => {
  const { k } = await fleet(t, 2)
  const caller = await startRegisteredKite(t, k.url, k.kiteKey('bob'), { name: 'caller' })
  const p = caller.app.kite.pool(query, { strategy: 'round-robin', refreshInterval: 0 })
  t.teardown(() => p.close())
  await p.ready
  t.equal(p.kites.length, 2)
  let running = true
  const answered = new Set<string>()
  const failures: unknown[] = []
  const load = (async () => {
    while (running) await p.tell('whoami').then((id) => answered.add(id as string), (e: unknown) => failures.push(e))
  })()
  const added = once<{ id: string }>(p, 'add')
  const late = await worker(t, k.url, k.kiteKey('alice'))
  t.equal((await added).id, late.id, 'the watch brought the new kite')
  const deadline = Date.now() + 10_000
  while (!answered.has(late.id) && Date.now() < deadline) await new Promise((r) => setImmediate(r))
  running = false
  await load
  t.ok(answered.has(late.id), 'the new kite answers calls')
  t.same(failures, [])
  t.equal(p.stats().refreshes, 1, 'no refresh was needed')

  const removed = once<{ id: string }>(p, 'remove')
  await late.app.close()
  t.equal((await removed).id, late.id, 'a kite that deregisters leaves the pool')
})

t.test('tokens: each pooled kite renews its own token, not each call', async (t) => {
  // Tokens live 2 s (+1 s leeway) and are renewed 2 s before they expire: about once a second per kite.
  const k = await startKontrol(t, { heartbeatInterval: 5, heartbeatGrace: 5, tokenTTL: 2, tokenLeeway: 1 })
  for (let i = 0; i < 2; i++) await worker(t, k.url, k.kiteKey('alice'))
  const renewals = new Map<string, number>()
  k.app.kite.preHandle((req) => {
    if (req.method === 'getToken') renewals.set(req.username, (renewals.get(req.username) ?? 0) + 1)
  })
  const p = pool(t, k.url, k.kiteKey('bob'), query, { refreshInterval: 0, renewBefore: 2 })
  const kontrolClient = new KiteClient(k.url, { auth: { type: 'kiteKey', key: k.kiteKey('carol') } })
  t.teardown(() => kontrolClient.close())
  const viaClient = kontrolClient.pool(query, { refreshInterval: 0 })
  t.teardown(() => viaClient.close())
  let calls = 0
  const wrong: unknown[] = []
  const until = Date.now() + 3500
  while (Date.now() < until) {
    const answer = await p.tell('secret').catch((e: unknown) => e)
    if (answer !== 'hello bob') wrong.push(answer)
    calls++
  }
  t.same(wrong, [], 'every call authenticated')
  t.ok(calls > 100, `${calls} calls with tokens that expire every few seconds, none refused`)
  const bob = renewals.get('bob') ?? 0
  t.ok(bob >= 2 && bob <= 12, `${bob} token renewals for 2 kites over 3.5 s (about one a second each)`)
  // carol's pool sat idle until its tokens expired: each kite's first call is refused, the token renewed once, the call sent again.
  const answers = []
  for (let i = 0; i < 20; i++) answers.push(await viaClient.tell('secret'))
  t.same(new Set(answers), new Set(['hello carol']), 'a pool made from a KiteClient connected to Kontrol: 20 calls answered')
  t.ok((renewals.get('carol') ?? 0) <= 2, `one renewal per kite, not per call (${renewals.get('carol')})`)
})
