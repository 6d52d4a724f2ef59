import { KiteConnection } from '../lib/connection/connection.js'
import { resolveLimits } from '../lib/dnode/limits.js'
import { localKite } from '../lib/protocol/kite.js'
import { silentLogger } from '../lib/silent-logger.js'
import type { KiteAuth } from '../lib/protocol/envelope.js'

/**
 * The caller's side of a call without sockets: `tell` (encode, pending
 * table, write) and its answer (parse, settle), 32 calls at a time, on a
 * KiteConnection whose sink keeps what it is given, against the neutral
 * client's work on the same strings (build the message, JSON.parse the
 * answer, a Map of resolvers). Nanoseconds per call, best of several runs:
 * on a shared machine the socket cases drift more than this code costs.
 */
const BATCH = 32

/** The answer to call `id` (both clients number their calls 0, 1, 2, …). */
function answer(id: number): string {
  return `{"method":${id},"arguments":[{"error":null,"result":16}],"callbacks":{}}`
}

/** CPU time of this process in ns (the thread runs alone: no servers here), less disturbed by a busy machine than wall time. */
function cpuNs(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) * 1000
}

async function kiteLoop(calls: number, auth: KiteAuth | null): Promise<number> {
  const sent: string[] = []
  const conn = new KiteConnection({
    sink: { send: (text) => sent.push(text), close: () => {} },
    handler: { handleCall: () => {} },
    limits: resolveLimits(),
    log: silentLogger(),
    localKite: localKite({ name: 'kite-client', version: '1.0.0' }),
    auth,
    defaultTimeout: 15000,
    transport: 'bench',
  })
  const t0 = cpuNs()
  for (let done = 0; done < calls; done += BATCH) {
    const waiting: Promise<unknown>[] = []
    for (let i = 0; i < BATCH; i++) waiting.push(conn.tell('square', [4]))
    for (let i = 0; i < BATCH; i++) conn.receive(answer(done + i))
    sent.length = 0
    await Promise.all(waiting)
  }
  const ns = (cpuNs() - t0) / calls
  conn.close()
  return ns
}

async function neutralLoop(calls: number, auth: KiteAuth | null): Promise<number> {
  const sent: string[] = []
  const kite = JSON.stringify(localKite({ name: 'kite-client', version: '1.0.0' }))
  const head = `{"method":"square","arguments":[{"kite":${kite},"authentication":${JSON.stringify(auth)},"responseCallback":"[Function]","withArgs":[4]}],"callbacks":{"`
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>()
  let next = 0
  const call = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = next++
      pending.set(id, { resolve, reject })
      sent.push(`${head}${id}":[0,"responseCallback"]}}`)
    })
  const receive = (text: string): void => {
    const msg = JSON.parse(text) as { method: number; arguments: [{ error: unknown; result: unknown }] }
    const p = pending.get(msg.method)!
    pending.delete(msg.method)
    const r = msg.arguments[0]
    if (r.error === null) p.resolve(r.result)
    else p.reject(r.error)
  }
  const t0 = cpuNs()
  for (let done = 0; done < calls; done += BATCH) {
    const waiting: Promise<unknown>[] = []
    for (let i = 0; i < BATCH; i++) waiting.push(call())
    for (let i = 0; i < BATCH; i++) receive(answer(done + i))
    sent.length = 0
    await Promise.all(waiting)
  }
  return (cpuNs() - t0) / calls
}

/** ns per call of KiteConnection and of the neutral client's code, best of `runs` alternating runs. */
export async function clientCost(auth: KiteAuth | null, runs = 7, calls = 64 * 1024): Promise<{ kiteNs: number; neutralNs: number }> {
  let kiteNs = Infinity
  let neutralNs = Infinity
  for (let r = 0; r < runs; r++) {
    kiteNs = Math.min(kiteNs, await kiteLoop(calls, auth))
    neutralNs = Math.min(neutralNs, await neutralLoop(calls, auth))
  }
  return { kiteNs, neutralNs }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const auth of [null, { type: 'token', key: 'x'.repeat(700) }]) {
    const { kiteNs, neutralNs } = await clientCost(auth)
    console.log(`client code per call, no sockets, ${auth === null ? 'no credentials' : 'token'}: KiteConnection ${kiteNs.toFixed(0)} ns, neutral ${neutralNs.toFixed(0)} ns (CPU time; the answers' text is built by the bench in both)`)
  }
}
