import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { kitePool } from '../../lib/client/finder.js'
import { KitePoolError, type KitePool } from '../../lib/client/pool.js'
import { KiteClient } from '../../lib/client/client.js'
import type { GetKitesResult } from '../../lib/protocol/kontrol.js'
import { startKontrol } from '../helpers/kontrol.js'

const script = fileURLToPath(new URL('../helpers/pool-kite.mjs', import.meta.url))

interface Child {
  proc: ChildProcess
  id: string
  name: string
}

/** Every `exec <kite> <call>` line the children printed: which calls ran where. */
const executed = new Map<string, string[]>()

/** A kite in its own process (test/helpers/pool-kite.mjs), registered with Kontrol. */
function spawnKite(t: Tap.Test, kontrolURL: string, key: string, name: string): Promise<Child> {
  const proc = spawn(process.execPath, [script], { env: { ...process.env, KONTROL_URL: kontrolURL, KITE_KEY: key, KITE_NAME: name }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => {
    proc.kill('SIGCONT')
    proc.kill('SIGKILL')
  })
  return new Promise((resolve, reject) => {
    let buffered = ''
    proc.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString()
      let nl: number
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const [word, a, b] = buffered.slice(0, nl).split(' ')
        buffered = buffered.slice(nl + 1)
        if (word === 'registered') resolve({ proc, id: a!, name })
        else if (word === 'exec') executed.set(b!, [...(executed.get(b!) ?? []), a!])
      }
    })
    proc.once('exit', (code, signal) => reject(new Error(`kite ${name} exited (${code ?? signal}) before registering`)))
  })
}

interface Call {
  id: string
  pool: 'plain' | 'idempotent'
  start: number
  end: number
  by: string
  error: unknown
  done: Promise<void>
}


// Child processes on a busy machine: give the file room beyond tap's default.
t.setTimeout(240_000)

t.test('a fleet in child processes: one killed (SIGKILL), one frozen (SIGSTOP) mid-run', async (t) => {
  const INTERVAL = 2000
  const CONNECT = 1000
  // Heartbeat interval 2 s (kites beat every 1 s: 2 s less the 0.5 s slack, in whole seconds); a silent kite is only removed after 2 + 10 s.
  const k = await startKontrol(t, { heartbeatInterval: INTERVAL / 1000, heartbeatGrace: 10, sweepInterval: 200 })
  const key = k.kiteKey('alice')
  const [a, b, killed, frozen] = await Promise.all(['a', 'b', 'killed', 'frozen'].map((name) => spawnKite(t, k.url, key, name))) as [Child, Child, Child, Child]
  const query = { username: 'alice', environment: 'test' }
  const options = { kontrolURL: k.url, auth: { type: 'kiteKey' as const, key: k.kiteKey('bob') }, connectTimeout: CONNECT, timeout: 3000, refreshInterval: 500 }
  const plain = kitePool(query, options)
  const idempotent = kitePool(query, { ...options, idempotent: true })
  t.teardown(() => plain.close())
  t.teardown(() => idempotent.close())
  await Promise.all([plain.ready, idempotent.ready])
  t.equal(plain.kites.length, 4)
  t.equal(idempotent.kites.length, 4)

  const calls: Call[] = []
  let seq = 0
  const issue = (pool: KitePool, tag: Call['pool']): void => {
    const call = { id: `${tag}-${seq++}`, pool: tag, start: Date.now(), end: 0, by: '', error: null } as Call
    call.done = pool.tell('work', call.id).then(
      (by) => void (call.by = by as string),
      (err: unknown) => void (call.error = err),
    ).finally(() => void (call.end = Date.now()))
    calls.push(call)
  }
  // Open-loop load: a call on each pool every 4 ms, whatever happens to the kites.
  const load = setInterval(() => {
    issue(plain, 'plain')
    issue(idempotent, 'idempotent')
  }, 4)
  t.teardown(() => clearInterval(load))
  const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

  await wait(1000)
  const killedAt = Date.now()
  killed.proc.kill('SIGKILL')
  // Long enough for a window of calls placed once the kill had been noticed (connect timeout + 1 s) before the freeze.
  await wait(CONNECT + 2000)

  const observer = new KiteClient(k.url, { auth: { type: 'kiteKey', key: k.kiteKey('carol') } })
  t.teardown(() => observer.close())
  await observer.connect()
  const listed = async (): Promise<string[]> => ((await observer.tell('getKites', { query })) as GetKitesResult).kites.map((x) => x.kite.id)
  t.ok((await listed()).includes(frozen.id), 'the kite to freeze is listed')
  const frozenAt = Date.now()
  frozen.proc.kill('SIGSTOP')
  // Kontrol: how long until it stops handing the frozen kite out.
  let goneAfter = -1
  while (Date.now() - frozenAt < INTERVAL * 3) {
    if (!(await listed()).includes(frozen.id)) {
      goneAfter = Date.now() - frozenAt
      break
    }
    await wait(50)
  }
  t.ok(goneAfter >= 0 && goneAfter <= INTERVAL + 1000, `Kontrol stopped handing out the frozen kite ${goneAfter} ms after SIGSTOP (within one heartbeat interval, ${INTERVAL} ms, of its last beat; 1 s allowed for a busy machine)`)
  t.not(await k.app.kontrol.storage.get(frozen.id), null, 'it is left out before it is removed (removal comes after interval + grace)')

  await wait(Math.max(0, frozenAt + 4000 - Date.now()))
  clearInterval(load)
  const stoppedAt = Date.now()
  await Promise.all(calls.map((c) => c.done))

  const faulty = new Set([killed.id, frozen.id])
  const plainCalls = calls.filter((c) => c.pool === 'plain')
  const idemCalls = calls.filter((c) => c.pool === 'idempotent')
  const plainFailed = plainCalls.filter((c) => c.error !== null)
  t.ok(calls.length > 200, `${calls.length} calls made (${plainFailed.length} plain calls failed)`)

  // Non-idempotent calls: the only failures are calls that were sent to the killed or frozen kite.
  const unsent = plainFailed.filter((c) => {
    const e = c.error
    return !(e instanceof KitePoolError && e.sent && faulty.has(e.tried[e.tried.length - 1]!.id))
  })
  t.same(unsent.map((c) => String(c.error)), [], 'no plain call failed that had not been sent to the killed or frozen kite')
  for (const c of plainFailed) {
    const e = c.error as KitePoolError
    const last = e.tried[e.tried.length - 1]!
    if (last.id === frozen.id && e.type !== 'timeout') t.fail(`a call lost on the frozen kite fails with a timeout, not ${e.type}`)
    if (last.id === killed.id && e.type !== 'disconnect') t.fail(`a call lost on the killed kite fails with disconnect, not ${e.type}`)
  }
  const twice = plainCalls.filter((c) => (executed.get(c.id)?.length ?? 0) > 1)
  t.same(twice.map((c) => c.id), [], 'no plain call ran twice')
  const misreported = plainCalls.filter((c) => c.error === null && !(executed.get(c.id) ?? []).includes(c.by))
  t.same(misreported.map((c) => c.id), [], 'each answered call ran on the kite that answered it')

  // Idempotent calls: retried on another kite, so none fails.
  t.same(idemCalls.filter((c) => c.error !== null).map((c) => String(c.error)), [], 'no idempotent call failed')

  // Calls keep flowing to the others: answers never pause longer than the connect timeout…
  const answered = calls.filter((c) => c.error === null && c.start >= killedAt).map((c) => c.end).sort((x, y) => x - y)
  let gap = 0
  for (let i = 1; i < answered.length; i++) gap = Math.max(gap, answered[i]! - answered[i - 1]!)
  t.ok(gap <= CONNECT, `the longest pause between answers after the first fault: ${gap} ms (connect timeout ${CONNECT} ms)`)
  // …and every call placed once the pool had a connect timeout (plus 1 s for a busy machine) to notice a fault went to a healthy kite.
  const afterKill = calls.filter((c) => c.start >= killedAt + CONNECT + 1000 && c.start < frozenAt)
  const afterFreeze = calls.filter((c) => c.start >= frozenAt + CONNECT + 1000)
  const settled = [...afterKill, ...afterFreeze]
  // (A call placed just before the freeze may have been sent to the kite about to freeze: that one may fail.)
  const lostOnFrozen = (c: Call): boolean => c.error instanceof KitePoolError && c.error.tried[c.error.tried.length - 1]!.id === frozen.id
  const bad = [...afterKill.filter((c) => (c.error !== null && !lostOnFrozen(c)) || c.by === killed.id), ...afterFreeze.filter((c) => c.error !== null || faulty.has(c.by))]
  t.ok(afterKill.length >= 10 && afterFreeze.length >= 10, `${afterKill.length} + ${afterFreeze.length} calls placed after each fault had been noticed`)
  t.same(bad.map((c) => `${c.id}: ${String(c.error)}`), [], 'all of them answered by the healthy kites')
  t.ok(stoppedAt > frozenAt)

  for (const p of [plain, idempotent]) {
    const ids = p.kites.map((x) => x.id).sort()
    t.same(ids, [a.id, b.id].sort(), 'the pool now holds only the healthy kites')
  }
  const stats = idempotent.stats()
  t.ok(stats.failovers > 0, `the idempotent pool failed over ${stats.failovers} times`)
  t.equal(plain.stats().lost, plainFailed.length, 'stats count the lost calls')
})
