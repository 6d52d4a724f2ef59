import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { KiteClient } from '../../lib/client/client.js'
import { clientFrame, countdownCall, floodSocket, nonReadingWebSocket, startAbuseServer, type AbuseServer, type LogLine } from '../helpers/abuse.js'

// Each case floods for the whole grace period (10 s, the default) before the server gives up.
t.setTimeout(240_000)

/** Retained memory the server may grow by while one peer floods it and never reads. */
const HEAP_BOUND = 64 * 1024 * 1024
const GRACE_MS = 10_000

interface Watch {
  stop(): Promise<{ maxGrowth: number; calls: number; failures: string[] }>
}

/**
 * While a flood runs: samples the server's retained memory every 500 ms and
 * has a well-behaved client call `square` every 50 ms on its own connection.
 */
async function watch(server: AbuseServer): Promise<Watch> {
  const client = new KiteClient(`${server.address}/kite`, { transport: 'websocket', timeout: 5000 })
  await client.connect()
  const baseline = await server.retained()
  let maxGrowth = 0
  let calls = 0
  const failures: string[] = []
  let running = true
  const sampling = (async () => {
    while (running) {
      maxGrowth = Math.max(maxGrowth, (await server.retained()) - baseline)
      await sleep(500)
    }
  })()
  const calling = (async () => {
    while (running) {
      try {
        if ((await client.tell('square', calls)) !== calls * calls) failures.push('wrong answer')
        calls++
      } catch (err) {
        failures.push((err as Error).message)
      }
      await sleep(50)
    }
  })()
  return {
    async stop() {
      running = false
      await Promise.all([sampling, calling])
      await client.close()
      return { maxGrowth, calls, failures }
    },
  }
}

const closedFor = (transport: string) => (l: LogLine) => l.msg === 'peer disconnected' && l.transport === transport && l.code === 1008
const pausedFor = (transport: string) => (l: LogLine) => l.transport === transport && /reading from it paused|sends are held/.test(l.msg)

async function check(t: Tap.Test, server: AbuseServer, transport: string, flood: (stop: Promise<unknown>) => Promise<number>): Promise<void> {
  const w = await watch(server)
  const closed = server.waitLine(closedFor(transport))
  const started = Date.now()
  const frames = await flood(closed)
  const closeLine = await closed
  const floodMs = Date.now() - started
  const paused = await server.waitLine(pausedFor(transport))
  // Keep the other client calling a little after the close too.
  await sleep(500)
  const { maxGrowth, calls, failures } = await w.stop()
  t.ok(floodMs >= GRACE_MS, `${transport}: the peer flooded for ${(floodMs / 1000).toFixed(1)} s (${frames} requests) before it was closed`)
  t.equal(closeLine.code, 1008, `${transport}: closed with 1008 (${String(closeLine.reason)})`)
  const afterPause = closeLine.time - paused.time
  t.ok(afterPause >= GRACE_MS - 100 && afterPause <= GRACE_MS + 3000, `${transport}: closed ${afterPause} ms after reading was paused (grace ${GRACE_MS} ms)`)
  t.ok(maxGrowth < HEAP_BOUND, `${transport}: retained memory grew by ${(maxGrowth / 2 ** 20).toFixed(1)} MiB at most (bound ${HEAP_BOUND / 2 ** 20} MiB)`)
  t.same(failures, [], `${transport}: another client's ${calls} calls all succeeded during the flood`)
  t.ok(calls >= 20, `${transport}: another client kept calling (${calls} calls)`)
  const warn = server.lines.filter((l) => l.level === 40 && l.transport === transport && /does not (read|poll)/.test(l.msg))
  t.equal(warn.length, 1, `${transport}: one warn line for the close`)
  t.notOk(server.lines.some((l) => l.level >= 50), 'no error-level log line')
}

t.test('a raw WebSocket peer that never reads', async (t) => {
  const server = await startAbuseServer(t)
  await check(t, server, 'websocket', async (stop) => {
    const socket = await nonReadingWebSocket(server.address, '/kite')
    return floodSocket(socket, (i) => clientFrame(countdownCall(i)), stop)
  })
})

t.test('a SockJS WebSocket peer that never reads', async (t) => {
  const server = await startAbuseServer(t)
  await check(t, server, 'sockjs-websocket', async (stop) => {
    const socket = await nonReadingWebSocket(server.address, '/kite/123/nonreader/websocket')
    return floodSocket(socket, (i) => clientFrame(JSON.stringify(Array.from({ length: 10 }, (_, k) => countdownCall(i * 10 + k)))), stop)
  })
})

t.test('a SockJS XHR session that posts but never polls', async (t) => {
  // A long disconnect delay, so that the byte bound (not session expiry) ends the session.
  const server = await startAbuseServer(t, { disconnectDelaySeconds: 120 })
  await check(t, server, 'sockjs-xhr', async (stop) => {
    const base = `${server.address}/kite/123/neverpolls`
    const open = await fetch(`${base}/xhr`, { method: 'POST' })
    t.equal(await open.text(), 'o\n')
    let stopped = false
    void stop.then(() => (stopped = true))
    let sends = 0
    const statuses = new Set<number>()
    // Four senders at once, each waiting for its answer before sending again.
    await Promise.all(
      Array.from({ length: 4 }, async (_, lane) => {
        while (!stopped) {
          const i = sends++ * 4 + lane
          const body = JSON.stringify(Array.from({ length: 50 }, (_, k) => countdownCall(i * 50 + k)))
          const res = await fetch(`${base}/xhr_send`, { method: 'POST', body })
          await res.arrayBuffer()
          statuses.add(res.status)
          if (res.status !== 204) return
        }
      }),
    )
    t.ok(statuses.has(404), 'sends to the closed session are answered 404')
    const poll = await fetch(`${base}/xhr`, { method: 'POST' })
    t.match(await poll.text(), /^c\[1008,/, 'the next poll gets the close frame')
    return sends
  })
})

