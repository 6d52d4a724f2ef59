import t from 'tap'
import Fastify from 'fastify'
import { KiteClient } from '../../lib/client/client.js'
import { fuzzFrames, registerFuzzTarget, sendFuzz } from '../../bench/fuzz-frames.js'

t.setTimeout(300_000)

const FRAMES = Number(process.env.KITE_FUZZ_FRAMES ?? 50_000)
const SEED = Number(process.env.KITE_FUZZ_SEED ?? Date.now() % 1_000_000)

t.test(`${FRAMES} generated frames over real sockets (seed ${SEED}): no crash, no rejection, no pollution, still answering`, async (t) => {
  const rejections: unknown[] = []
  const onRejection = (err: unknown): void => {
    rejections.push(err)
  }
  process.on('unhandledRejection', onRejection)
  t.teardown(() => process.off('unhandledRejection', onRejection))
  const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort()

  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await registerFuzzTarget(app)
  const url = `${await app.listen({ port: 0, host: '127.0.0.1' })}/kite`

  const started = Date.now()
  // Six raw WebSocket lanes and two SockJS lanes.
  const result = await sendFuzz(url.replace('http', 'ws'), fuzzFrames(FRAMES, SEED), 8, (lane) => lane >= 6)
  const ms = Date.now() - started
  t.equal(result.sent, FRAMES, `${result.sent} frames sent in ${(ms / 1000).toFixed(1)} s; the server closed ${result.closes} connections (${JSON.stringify(result.codes)})`)
  const codes = Object.keys(result.codes).map(Number)
  t.ok(codes.every((c) => [1000, 1005, 1007, 1008, 1009].includes(c)), `only kite close codes: ${codes.join(', ')}`)

  t.same(rejections, [], 'no unhandled rejection')
  t.same(Object.getOwnPropertyNames(Object.prototype).sort(), protoBefore, 'Object.prototype untouched')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no polluted property')

  for (const transport of ['websocket', 'sockjs', 'xhr-polling'] as const) {
    const client = new KiteClient(url, { transport })
    await client.connect()
    t.equal(await client.tell('square', 12), 144, `${transport}: the server still answers`)
    await client.close()
  }
})
