import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { kiteServer } from '../plugins/kite-server/index.js'

/** The kite the fuzzers aim at: plain, callback, echo and authenticated methods, and an authenticator that sometimes refuses. */
export async function registerFuzzTarget(app: FastifyInstance): Promise<void> {
  await app.register(kiteServer, { name: 'fuzzed', version: '1.0.0', authenticators: { custom: (ctx) => (ctx.authentication.key === 'ok' ? { username: 'ok' } : Promise.reject(new Error('no'))) } })
  app.kite.handle('square', (req) => (req.args[0] as number) ** 2).disableAuthentication()
  app.kite.handle('echo', (req) => req.args).disableAuthentication()
  app.kite
    .handle('count', async (req) => {
      const [n, cb] = req.args as [number, unknown]
      if (typeof cb === 'function') for (let i = 0; i < Math.min(Number(n) || 0, 3); i++) cb(i)
      return 'done'
    })
    .disableAuthentication()
  app.kite.handle('secret', () => 'secret')
}

/**
 * Generated frames for the wire fuzzing (test/plugins/fuzz.test.ts and
 * `npm run fuzz`): valid dnode and kite shapes with a wrong type or value in
 * each field, deep nesting, huge numbers, prototype keys, bad callback paths,
 * invalid UTF-8 and binary frames. A frame is text (a string) or raw bytes
 * sent as a text or binary WebSocket message.
 */
export type FuzzFrame = { kind: 'text'; data: string } | { kind: 'bytes'; data: Uint8Array; binary: boolean }

const METHODS = ['square', 'count', 'echo', 'secret', 'kite.ping', 'kite.heartbeat', 'kite.log', 'kite.systemInfo', 'nope', '', 'methods', 'cull']
const KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '0', '-1', 'withArgs', 'responseCallback']

const wrong = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 20 }),
  fc.array(fc.integer(), { maxLength: 4 }),
  fc.dictionary(fc.constantFrom(...KEYS), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
)

const identity = fc.oneof(
  fc.constant(null),
  fc.record({ username: fc.oneof(fc.string({ maxLength: 10 }), wrong), environment: fc.string({ maxLength: 5 }), name: fc.oneof(fc.string({ maxLength: 8 }), wrong), version: fc.constantFrom('1.0.0', 'x', ''), region: fc.string({ maxLength: 5 }), hostname: fc.string({ maxLength: 5 }), id: fc.string({ maxLength: 8 }) }),
  wrong,
)

const auth = fc.oneof(fc.constant(null), fc.record({ type: fc.oneof(fc.constantFrom('token', 'kiteKey', 'custom', ''), wrong), key: fc.oneof(fc.string({ maxLength: 40 }), wrong) }), wrong)

const path = fc.oneof(
  fc.constant([0, 'responseCallback']),
  fc.constant([0, 'withArgs', 1]),
  fc.constant(['__proto__', 'polluted']),
  fc.constant([0, '__proto__', 'polluted']),
  fc.constant([0, 'constructor', 'prototype', 'polluted']),
  fc.array(fc.oneof(fc.integer({ min: -2, max: 1_000_000 }), fc.constantFrom(...KEYS), fc.double()), { maxLength: 6 }),
  wrong,
)

const callbacks = fc.oneof(fc.dictionary(fc.oneof(fc.nat({ max: 1_000_000 }).map(String), fc.constantFrom(...KEYS), fc.string({ maxLength: 4 })), path, { maxKeys: 4 }), wrong)

const withArgs = fc.oneof(fc.array(fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant('[Function]')), { maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), wrong)

/** The kite envelope with each field either right or wrong. */
const envelope = fc.record(
  { kite: identity, authentication: auth, responseCallback: fc.oneof(fc.constant('[Function]'), wrong), withArgs },
  { requiredKeys: [] },
)

const message = fc.record(
  {
    method: fc.oneof(fc.constantFrom(...METHODS), fc.nat({ max: 1000 }), wrong),
    arguments: fc.oneof(fc.tuple(envelope), fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 3 }), fc.array(envelope, { minLength: 2, maxLength: 3 }), wrong),
    callbacks,
  },
  { requiredKeys: [] },
)

/** JSON text of a shape-valid-ish message, or one with prototype keys written into the text. */
const messageText = fc.oneof(
  { weight: 10, arbitrary: message.map((m) => JSON.stringify(m)) },
  {
    weight: 2,
    arbitrary: fc.tuple(message, fc.constantFrom('"__proto__"', '"constructor"', '"prototype"')).map(([m, key]) => JSON.stringify(m).replace(/^\{/, `{${key}:{"polluted":1,"callbacks":{"1":["__proto__"]}},`)),
  },
)

const deep = fc.tuple(fc.integer({ min: 1, max: 3000 }), fc.constantFrom('[', '{"a":')).map(([depth, open]) => {
  const close = open === '[' ? ']' : '}'
  return `{"method":"echo","arguments":[{"kite":null,"authentication":null,"responseCallback":"[Function]","withArgs":[${open.repeat(depth)}1${close.repeat(depth)}]}],"callbacks":{"0":[0,"responseCallback"]}}`
})

const hugeNumbers = fc.constantFrom('1e999', '-1e309', '123456789012345678901234567890', '0.0000000000000000000000001', '-0', '9007199254740993').map(
  (n) => `{"method":"square","arguments":[{"kite":null,"authentication":null,"responseCallback":"[Function]","withArgs":[${n}]}],"callbacks":{"${n}":[0,"responseCallback"]}}`,
)

const garbage = fc.oneof(fc.string({ maxLength: 60 }), fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)), fc.constantFrom('', '{', '[', 'null', '{"method":', '[]', '{}', '"a"'))

/** Any frame: mostly parseable messages (which keep the connection open), some that close it. */
export const frameArbitrary: fc.Arbitrary<FuzzFrame> = fc.oneof(
  { weight: 30, arbitrary: messageText.map((data): FuzzFrame => ({ kind: 'text', data })) },
  { weight: 2, arbitrary: deep.map((data): FuzzFrame => ({ kind: 'text', data })) },
  { weight: 2, arbitrary: hugeNumbers.map((data): FuzzFrame => ({ kind: 'text', data })) },
  { weight: 2, arbitrary: garbage.map((data): FuzzFrame => ({ kind: 'text', data })) },
  {
    weight: 1,
    arbitrary: fc.tuple(messageText, fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([text, bad]): FuzzFrame => {
      // Invalid UTF-8 inside an otherwise valid message, sent as a text frame.
      const bytes = Buffer.from(text)
      const at = Math.floor(bytes.length / 2)
      return { kind: 'bytes', data: Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff, 0xfe, ...bad.map((b) => b | 0x80)]), bytes.subarray(at)]), binary: false }
    }),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((data): FuzzFrame => ({ kind: 'bytes', data, binary: true })) },
)

/** `count` frames from `seed`, generated lazily in chunks. */
export function* fuzzFrames(count: number, seed: number): Generator<FuzzFrame> {
  const chunk = 2000
  for (let done = 0, round = 0; done < count; round++) {
    const n = Math.min(chunk, count - done)
    for (const f of fc.sample(frameArbitrary, { numRuns: n, seed: seed + round })) yield f
    done += n
  }
}

export interface FuzzRunResult {
  /** Frames written while their connection was open. */
  sent: number
  /** Connections the server closed (each followed by a new one). */
  closes: number
  /** Close codes seen, with their counts. */
  codes: Record<string, number>
}

/**
 * Sends frames over `lanes` WebSocket connections to `url` (SockJS framing
 * when `sockjs`: each frame wrapped in a one-element array, or sent as is
 * when it is bytes), reconnecting whenever the server closes one.
 */
export async function sendFuzz(url: string, frames: Iterable<FuzzFrame>, lanes: number, sockjs: (lane: number) => boolean): Promise<FuzzRunResult> {
  const it = frames[Symbol.iterator]()
  const result: FuzzRunResult = { sent: 0, closes: 0, codes: {} }
  const next = (): FuzzFrame | null => {
    const r = it.next()
    return r.done === true ? null : r.value
  }
  const lane = async (n: number): Promise<void> => {
    let sessions = 0
    for (;;) {
      const useSockjs = sockjs(n)
      const target = useSockjs ? `${url}/${100 + n}/fuzz${n}x${sessions++}/websocket` : url
      const ws = new WebSocket(target)
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
      ws.on('error', () => {})
      ws.on('message', () => {})
      try {
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve())
          ws.once('error', reject)
        })
      } catch {
        continue
      }
      let open = true
      void closed.then(() => (open = false))
      for (;;) {
        if (!open) break
        const f = next()
        if (f === null) {
          ws.close()
          await closed
          return
        }
        if (f.kind === 'text') ws.send(useSockjs ? JSON.stringify([f.data]) : f.data)
        else ws.send(f.data, { binary: f.binary })
        result.sent++
        if (ws.bufferedAmount > 256 * 1024 || result.sent % 32 === 0) await new Promise((r) => setImmediate(r))
      }
      const code = await closed
      result.closes++
      result.codes[code] = (result.codes[code] ?? 0) + 1
    }
  }
  await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)))
  return result
}
