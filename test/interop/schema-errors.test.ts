import t from 'tap'
import { createRequire } from 'node:module'
import { Type } from 'typebox'
import type * as KitejsHelpers from '../helpers/kitejs.cjs'
import { kiteCallback } from '../../lib/methods/callback-schema.js'
import { RawPeer } from '../helpers/raw-peer.js'
import { capture } from '../helpers/frames.js'
import { startKite } from '../helpers/server.js'

const require = createRequire(import.meta.url)
const kitejs = require('../helpers/kitejs.cjs') as typeof KitejsHelpers

/** A kite whose `area` and `countdown` have schemas. */
function schemaKite(t: Parameters<typeof startKite>[0]) {
  return startKite(t, {}, (app) => {
    app.kite.handle('area', { schema: { args: [Type.Object({ w: Type.Number({ minimum: 0 }), h: Type.Number({ minimum: 0 }) })], result: Type.Number() }, auth: false }, (req) => {
      const [{ w, h }] = req.args as [{ w: number; h: number }]
      return w * h
    })
    app.kite.handle('countdown', { schema: { args: [Type.Integer({ minimum: 0, maximum: 10 }), kiteCallback([Type.Integer()])] }, auth: false }, async (req) => {
      const [n, onTick] = req.args as [number, (i: number) => Promise<void>]
      for (let i = n; i > 0; i--) await onTick(i)
      return 'done'
    })
  })
}

t.test('an argumentError as kite.js 1.0.13 sees it', async (t) => {
  const { url } = await schemaKite(t)
  const kite = kitejs.connectKite(url.replace('http', 'ws'), { transport: 'ws' })
  t.teardown(() => kitejs.closeKite(kite))
  t.equal(await kite.tell('area', [{ w: 2, h: 3 }]), 6)
  const err = (await kite.tell('area', [{ w: -2, h: 3 }]).then(
    () => null,
    (e: unknown) => e,
  )) as Record<string, unknown>
  // Recorded: kite.js 1.0.13 rejects with its own KiteError (makeProperError), built from the wire error's type, message and code.
  t.ok(err instanceof Error, 'an Error')
  t.equal(err.name, 'KiteError')
  t.same(
    { type: err.type, message: err.message, code: err.code },
    { type: 'argumentError', message: 'args/0/w must be >= 0', code: 'KITE_ERR_ARGUMENT_INVALID' },
    'kite.js gets type, message and code',
  )
  t.equal(err.id, undefined, 'kite.js drops the request id (it keeps type, message, code only)')
  const ticks: unknown[] = []
  t.equal(await kite.tell('countdown', [2, (i: unknown) => ticks.push(i)]), 'done', 'a kite.js callback passes the callback schema')
  t.same(ticks, [2, 1])
  await t.rejects(kite.tell('countdown', [2, 'tick']), { type: 'argumentError', message: 'args/1 must be a callback' })
})

t.test('an argumentError as a Go client sees it: the recorded Go frame with a bad argument', async (t) => {
  const { url } = await schemaKite(t)
  // Capture 01: a Go kite (gosquare) calling square(4) over SockJS. Same frame, our method, a bad argument.
  const recorded = capture('01').find((v) => v.from === 'client')!
  const goFrame = recorded.frame.replace('\\"method\\":\\"square\\"', '\\"method\\":\\"area\\"').replace('\\"withArgs\\":[4]', '\\"withArgs\\":[{\\"w\\":\\"wide\\",\\"h\\":1}]')
  t.not(goFrame, recorded.frame)
  const peer = await RawPeer.open(`${url.replace('http', 'ws')}/602/e4fb2814b508f394b528/websocket`)
  t.teardown(() => peer.close())
  peer.send(goFrame)
  const frame = await peer.waitFor((f) => f.startsWith('a') && f.includes('\\"method\\":0'))
  const reply = JSON.parse((JSON.parse(frame.slice(1)) as string[])[0]!) as { method: number; arguments: Array<{ error: Record<string, string>; result: unknown }>; callbacks: object }
  // Capture 05: the argumentError a Go kite itself sends; ours must have the same fields in the same order.
  const goError = capture('05').find((v) => v.from === 'server' && v.frame.includes('argumentError'))!.messages[0]!.arguments[0] as { error: Record<string, string> }
  t.same(Object.keys(reply.arguments[0]!), ['error', 'result'])
  t.same(Object.keys(reply.arguments[0]!.error), Object.keys(goError.error), 'the fields of Go kite.Error: type, message, code, id')
  t.equal(reply.arguments[0]!.error.type, 'argumentError', 'Go kite.Error.Type')
  t.equal(reply.arguments[0]!.error.message, 'args/0/w must be number', 'Go kite.Error.Message')
  t.equal(reply.arguments[0]!.error.code, 'KITE_ERR_ARGUMENT_INVALID', 'Go kite.Error.CodeVal')
  t.match(reply.arguments[0]!.error.id, /^[0-9a-f]{16}$/, 'Go kite.Error.RequestID')
  t.equal(reply.arguments[0]!.result, null)
  t.same(reply.callbacks, {})
})
