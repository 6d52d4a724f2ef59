import { Worker } from 'node:worker_threads'
import { measure as measureLoop, measureGroup, type OneCall } from './measure.js'
import WebSocket from 'ws'
import { KiteClient } from '../lib/client/client.js'
import type { TransportName } from '../lib/client/transports/transport.js'
import { resultEncodeCost, schemaDispatchCost } from './schema-dispatch.js'
import { runObserveBench } from './observe.js'
import { neutralClient } from './neutral.js'
import { clientCost } from './client-cost.js'

/**
 * Calls per second and latency, KiteClient → kite-server `square`, against
 * its floor (bench/neutral.ts: a hand-written dnode client sending the same
 * messages) and a bare JSON-over-WebSocket echo loop, all measured in the same run.
 *   npm run bench     (BENCH_SECONDS=2 per case and round, BENCH_ROUNDS=5;
 *                      BENCH_ONLY=floor: the client cases only)
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)

interface Result {
  name: string
  inFlight: number
  callsPerSec: number
  p50: number
  p99: number
  /** Busy time of the client's thread (event loop utilisation) per call, µs: what the caller pays, less sensitive to a busy machine than calls/s. */
  clientUs: number
}

/** One case's figures: the shared loop (bench/measure.ts) for SECONDS. */
async function measure(name: string, inFlight: number, call: OneCall): Promise<Result> {
  const m = await measureLoop(inFlight, SECONDS, call)
  return { name, inFlight, callsPerSec: m.callsPerSec, p50: m.p50, p99: m.p99, clientUs: m.clientPerCall }
}

/**
 * The bare loop's request: the same JSON a kite call carries (the caller's
 * identity, no credentials, the arguments), so that the ratio measures what
 * the framework costs, not what the protocol's bytes cost.
 */
function bareRequest(id: number): string {
  return `{"method":"square","id":${id},"kite":${KITE},"authentication":null,"args":[4]}`
}
const KITE = JSON.stringify({ name: 'kite-client', username: 'unknown', id: '4b0c6c1e-6c1e-4f47-9d53-2c3f0d3b8a51', environment: 'unknown', region: 'unknown', version: '1.0.0', hostname: 'bench-host' })

async function bareClient(url: string): Promise<{ call: OneCall; close: () => void }> {
  const ws = new WebSocket(url)
  await new Promise((r, j) => {
    ws.once('open', r)
    ws.once('error', j)
  })
  const pending = new Map<number, (v: unknown) => void>()
  let next = 0
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString()) as { id: number; result: number }
    const resolve = pending.get(msg.id)
    pending.delete(msg.id)
    resolve?.(msg.result)
  })
  const call: OneCall = () =>
    new Promise((resolve) => {
      const id = next++
      pending.set(id, resolve)
      ws.send(bareRequest(id))
    })
  return { call, close: () => ws.close() }
}

/** A KiteClient calling `square` (no authentication) or, with `authenticated`, `secureSquare` (token checked). */
async function kiteClient(url: string, transport: TransportName, token?: string, authenticated = false, method = authenticated ? 'secureSquare' : 'square'): Promise<{ call: OneCall; close: () => Promise<void> }> {
  const client = new KiteClient(url, { transport, auth: token === undefined ? null : { type: 'token', key: token } })
  await client.connect()
  return { call: () => client.tell(method, 4), close: () => client.close() }
}

const worker = new Worker(new URL('./servers.js', import.meta.url))
const { bareURL, kiteURL, token } = await new Promise<{ bareURL: string; kiteURL: string; token: string }>((r) => worker.once('message', r))

/** Every case is measured ROUNDS times, interleaved, and the median round is kept: this machine's speed drifts. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
/** BENCH_ONLY=floor: only the KiteClient-against-the-floor cases (and the bare baseline); skips proxy, schema, observe and pool. */
const ONLY_FLOOR = process.env.BENCH_ONLY === 'floor'
interface Case {
  name: string
  inFlight: number
  /** Cases of one group are measured together, in alternating slices (bench/measure.ts measureGroup). */
  group: string
  open: () => Promise<{ call: OneCall; close: () => unknown }>
}
const cases: Case[] = []
/** Each KiteClient case and its floor (the neutral dnode client sending the same messages), in the same group: measured in alternating slices. */
const floorPairs: Array<{ kite: Case; neutral: Case }> = []
for (const inFlight of [1, 32]) {
  cases.push({ name: 'bare JSON over WebSocket', inFlight, group: `bare ${inFlight}`, open: () => bareClient(bareURL) })
  for (const sockjs of [false, true]) {
    const transport = sockjs ? 'SockJS WS' : 'raw WS'
    for (const auth of [false, true]) {
      const suffix = auth ? ', token auth' : ''
      const group = `${transport} ${inFlight}`
      const neutral: Case = { name: `neutral dnode, ${transport}${suffix}`, inFlight, group, open: () => neutralClient(kiteURL, sockjs, auth ? 'secureSquare' : 'square', auth ? token : null) }
      const kite: Case = { name: `KiteClient, ${transport}${suffix}`, inFlight, group, open: () => kiteClient(kiteURL, sockjs ? 'sockjs' : 'websocket', auth ? token : undefined, auth) }
      cases.push(neutral, kite)
      floorPairs.push({ kite, neutral })
    }
  }
  cases.push({ name: 'KiteClient, raw WS, token, auth off', inFlight, group: `raw WS ${inFlight}`, open: () => kiteClient(kiteURL, 'websocket', token, false) })
}
// Reverse proxy (issue 15): the same kite called through a kite reverse proxy running in a third thread.
const proxyWorker = ONLY_FLOOR ? null : new Worker(new URL('./proxy-worker.js', import.meta.url), { workerData: { kiteURL } })
if (proxyWorker !== null) {
  const { proxiedURL } = await new Promise<{ proxiedURL: string }>((r) => proxyWorker.once('message', r))
  cases.push({ name: 'KiteClient, raw WS via rev. proxy', inFlight: 32, group: 'proxy', open: () => kiteClient(proxiedURL, 'websocket') })
  cases.push({ name: 'KiteClient, SockJS via rev. proxy', inFlight: 32, group: 'proxy', open: () => kiteClient(proxiedURL, 'sockjs') })
}
const rounds = new Map<Case, Result[]>(cases.map((c) => [c, []]))
const groups = [...new Set(cases.map((c) => c.group))].map((g) => cases.filter((c) => c.group === g))
for (let round = 0; round < ROUNDS; round++) {
  for (const group of groups) {
    const conns = []
    for (const c of group) conns.push(await c.open())
    const measured = await measureGroup(group[0]!.inFlight, SECONDS, conns.map((c) => c.call))
    group.forEach((c, i) => {
      const m = measured[i]!
      rounds.get(c)!.push({ name: c.name, inFlight: c.inFlight, callsPerSec: m.callsPerSec, p50: m.p50, p99: m.p99, clientUs: m.clientPerCall })
    })
    for (const c of conns) await c.close()
  }
}
const medianOf = (c: Case): Result => {
  const rs = [...rounds.get(c)!].sort((a, b) => a.callsPerSec - b.callsPerSec)
  return rs[Math.floor(rs.length / 2)]!
}
const results = cases.map(medianOf)
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const baseline = new Map(results.filter((r) => r.name === 'bare JSON over WebSocket').map((r) => [r.inFlight, r.callsPerSec]))
console.log(`square(4), median of ${ROUNDS} rounds of ${SECONDS}s per case, servers in a worker thread, Node ${process.version}; within a round, the cases of one transport and in-flight count (KiteClient, the neutral client, with and without a token) alternate in 100 ms slices, so their ratios hold no drift of the machine`)
console.log('ratio baseline: "bare JSON over WebSocket", a ws echo of JSON the size of a kite call, measured in this run')
console.log(['case'.padEnd(36), 'in flight', 'calls/s'.padStart(9), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'vs bare'.padStart(8), 'client µs/call'.padStart(14)].join('  '))
for (const r of results) {
  const ratio = r.callsPerSec / baseline.get(r.inFlight)!
  const us = median(rounds.get(cases.find((c) => c.name === r.name && c.inFlight === r.inFlight)!)!.map((x) => x.clientUs))
  console.log([r.name.padEnd(36), String(r.inFlight).padStart(9), r.callsPerSec.toFixed(0).padStart(9), r.p50.toFixed(3).padStart(8), r.p99.toFixed(3).padStart(8), `${ratio.toFixed(2)}x`.padStart(8), us.toFixed(1).padStart(14)].join('  '))
}
console.log('KiteClient / neutral (the floor: a hand-written dnode client sending the same messages, same server, same run); median of the per-round ratios of calls/s, of p50 latency (neutral / KiteClient) and of client-thread µs per call (neutral / KiteClient) (goal: >= 1.0x at 1 in flight, >= 0.9x at 32)')
for (const { kite, neutral } of floorPairs) {
  const k = rounds.get(kite)!
  const n = rounds.get(neutral)!
  const perRound = k.map((r, i) => r.callsPerSec / n[i]!.callsPerSec)
  // The client thread's cost per call, neutral / KiteClient: above 1 means KiteClient is the cheaper one.
  const cpu = median(k.map((r, i) => n[i]!.clientUs / r.clientUs))
  // Median latency, neutral / KiteClient: with a fixed number in flight it is the calls/s ratio, but a
  // median is not moved by the stalls a busy machine puts into a round (calls/s is).
  const p50 = median(k.map((r, i) => n[i]!.p50 / r.p50))
  console.log(`  ${kite.name.replace('KiteClient, ', '').padEnd(24)} ${String(kite.inFlight).padStart(2)} in flight: ${medianOf(kite).callsPerSec.toFixed(0).padStart(6)} / ${medianOf(neutral).callsPerSec.toFixed(0).padStart(6)} calls/s = ${median(perRound).toFixed(2)}x (rounds ${perRound.map((x) => x.toFixed(2)).join(' ')}); by p50 latency ${p50.toFixed(2)}x; client thread µs per call ${cpu.toFixed(2)}x`)
}
const byName = (name: string, inFlight: number): number => results.find((r) => r.name === name && r.inFlight === inFlight)!.callsPerSec
/** Median of the per-round ratios a / b of calls/s, and of p50 latency (b / a, so that above 1 still means a is faster). */
const perRoundRatio = (a: string, b: string, inFlight: number): string => {
  const ra = rounds.get(cases.find((c) => c.name === a && c.inFlight === inFlight)!)!
  const rb = rounds.get(cases.find((c) => c.name === b && c.inFlight === inFlight)!)!
  return `${median(ra.map((r, i) => r.callsPerSec / rb[i]!.callsPerSec)).toFixed(2)}x (p50 ${median(ra.map((r, i) => rb[i]!.p50 / r.p50)).toFixed(2)}x)`
}
// With token auth on, the kite remembers the token after the first call and KiteClient (and the neutral
// client) send a reference to it (remembered credentials, WebSocket only); with auth off it is sent whole.
for (const inFlight of [1, 32]) {
  const on = 'KiteClient, raw WS, token auth'
  console.log(`token auth on / no credentials (KiteClient, raw WebSocket, ${inFlight} in flight; goal >= 0.9x): ${perRoundRatio(on, 'KiteClient, raw WS', inFlight)}; on / token sent, auth off: ${perRoundRatio(on, 'KiteClient, raw WS, token, auth off', inFlight)}; SockJS on / none: ${perRoundRatio('KiteClient, SockJS WS, token auth', 'KiteClient, SockJS WS', inFlight)}; whole token in every call (auth off, as Go clients send it) / none: ${perRoundRatio('KiteClient, raw WS, token, auth off', 'KiteClient, raw WS', inFlight)}`)
}
// The client code alone (bench/client-cost.ts): no sockets, so a busy machine's scheduling does not blur it.
for (const auth of [null, { type: 'token', key: token }]) {
  const cost = await clientCost(auth)
  console.log(`client code per call, in process (tell, encode, pending table, parse, settle; CPU time, best of 7), ${auth === null ? 'no credentials' : 'token'}: KiteConnection ${cost.kiteNs.toFixed(0)} ns, neutral ${cost.neutralNs.toFixed(0)} ns (${(cost.neutralNs / cost.kiteNs).toFixed(2)}x)`)
}
if (ONLY_FLOOR) {
  worker.postMessage('stop')
  process.exit(0)
}

// Schema validation: `schemaSquare` (args schema [number], checked by the app's Ajv) against
// `square`, 32 in flight, raw WebSocket. Paired rounds, order alternating, median of the
// per-pair ratios: this machine's speed drifts more between rounds than validation costs.
const schemaRatios: number[] = []
const schemaRuns: Result[][] = [[], []]
for (let round = 0; round < ROUNDS * 2; round++) {
  const pair: Result[] = []
  for (const method of round % 2 === 0 ? ['square', 'schemaSquare'] : ['schemaSquare', 'square']) {
    const conn = await kiteClient(kiteURL, 'websocket', undefined, false, method)
    const r = await measure(method === 'square' ? 'kite raw WS, no schema' : 'kite raw WS, args schema', 32, conn.call)
    await conn.close()
    pair[method === 'square' ? 0 : 1] = r
  }
  schemaRuns[0]!.push(pair[0]!)
  schemaRuns[1]!.push(pair[1]!)
  schemaRatios.push(pair[1]!.callsPerSec / pair[0]!.callsPerSec)
}
worker.postMessage('stop')
proxyWorker?.postMessage('stop')
// Metrics and tracing against off: their own servers and alternating slices (bench/observe.ts).
const observeLines = await runObserveBench([1, 32], Number(process.env.BENCH_OBSERVE_SECONDS ?? SECONDS * ROUNDS))

for (const [proxied, direct] of [['KiteClient, raw WS via rev. proxy', 'KiteClient, raw WS'], ['KiteClient, SockJS via rev. proxy', 'KiteClient, SockJS WS']] as const) {
  console.log(`reverse proxy, 32 in flight: ${proxied} / ${direct} (direct, same run) = ${(byName(proxied, 32) / byName(direct, 32)).toFixed(2)}x (goal >= 0.6x)`)
}
const calls = (rs: Result[]): string => median(rs.map((r) => r.callsPerSec)).toFixed(0)
console.log(
  `args schema vs none (schemaSquare vs square), raw WebSocket, 32 in flight, ${schemaRatios.length} paired rounds: median ${calls(schemaRuns[1]!)} vs ${calls(schemaRuns[0]!)} calls/s; ` +
    `median ratio ${median(schemaRatios).toFixed(2)}x (goal: at least 0.90x; pairs ${schemaRatios.map((r) => r.toFixed(2)).join(' ')})`,
)
const dispatch = schemaDispatchCost()
console.log(
  `args schema, dispatch alone (in process, no sockets): ${dispatch.schemaNs.toFixed(0)} ns per call vs ${dispatch.plainNs.toFixed(0)} ns without; ` +
    `${dispatch.ratio.toFixed(2)}x the calls/s (validation costs ${(dispatch.schemaNs - dispatch.plainNs).toFixed(0)} ns per call, ` +
    `${((100 * (dispatch.schemaNs - dispatch.plainNs)) / (1e9 / median(schemaRuns[0]!.map((r) => r.callsPerSec)))).toFixed(1)}% of a whole call at 32 in flight above)`,
)
const encode = await resultEncodeCost()
console.log(
  `result schema, encoding an object result (in process, no sockets): ${encode.schemaNs.toFixed(0)} ns per call written by the schema's serializer ` +
    `vs ${encode.plainNs.toFixed(0)} ns scrubbed and stringified without one: ${encode.ratio.toFixed(2)}x the calls/s`,
)
for (const line of observeLines) console.log(line)

// The pool case (bench/pool.ts): pool.tell over 3 kites against one KiteClient to one kite.
await (await import('./pool.js')).benchPool(ROUNDS, SECONDS)
await (await import('./log.js')).benchCallLog(ROUNDS, SECONDS)
