import t from 'tap'
import fc from 'fast-check'
import { defaultDnodeLimits } from '../../lib/dnode/limits.js'
import { parseMessage } from '../../lib/dnode/message.js'
import { encodeInvocation, encodeMessage, primitiveArrayJson, primitiveJson } from '../../lib/dnode/encode.js'
import { encodeCall, encodeErrorResponse, encodeResultResponse, envelopeHead, parseEnvelope, parseResponse, withTraceContext } from '../../lib/protocol/envelope.js'
import { localKite } from '../../lib/protocol/kite.js'

/** A callback registry as a connection keeps one. */
function registry(firstId = 100, limit = Infinity): { register: (fn: unknown) => number; unregister: (id: number) => void; held: Map<number, unknown> } {
  const held = new Map<number, unknown>()
  let next = firstId
  return {
    held,
    register: (fn) => {
      if (held.size >= limit) throw new Error('too many callbacks')
      held.set(next, fn)
      return next++
    },
    unregister: (id) => held.delete(id),
  }
}

const kite = localKite({ name: 'math-client', version: '1.0.0', hostname: 'h', id: '4b0c6c1e-6c1e-4f47-9d53-2c3f0d3b8a51' })

t.test('primitive values are written exactly as JSON.stringify writes them in an array', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.double(), fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.constant(-0))), (values) => primitiveArrayJson(values) === JSON.stringify(values)),
    { numRuns: 300 },
  )
  t.pass('300 random arrays of primitives')
  t.equal(primitiveJson(Symbol('s')), 'null')
  t.equal(primitiveJson(() => 1), 'null', 'a function result is written as null, as before')
  t.throws(() => primitiveJson(10n), TypeError, 'a BigInt cannot be sent, as with JSON.stringify')
})

t.test('a call with plain arguments is the message a Go kite expects, and parses back', async (t) => {
  const r = registry()
  const text = encodeCall('square', 0, envelopeHead(kite, null), [4], r.register, r.unregister)
  t.equal(text, `{"method":"square","arguments":[{"kite":${JSON.stringify(kite)},"authentication":null,"responseCallback":"[Function]","withArgs":[4]}],"callbacks":{"0":[0,"responseCallback"]}}`)
  const msg = parseMessage(text, defaultDnodeLimits)
  const env = parseEnvelope(msg.arguments)
  t.same(env, { kite, authentication: null, withArgs: [4] })
  t.equal(r.held.size, 0)
})

t.test('functions among the arguments become callbacks at their paths, after the response callback', async (t) => {
  const r = registry(5)
  const onTick = (): void => {}
  const onDone = (): void => {}
  const text = encodeCall('countdown', 4, envelopeHead(kite, { type: 'token', key: 'abc' }), [3, { onTick, nested: [onDone] }], r.register, r.unregister)
  const msg = parseMessage(text, defaultDnodeLimits)
  t.same(msg.callbacks, { 4: [0, 'responseCallback'], 5: [0, 'withArgs', 1, 'onTick'], 6: [0, 'withArgs', 1, 'nested', 0] })
  t.same((msg.arguments[0] as { withArgs: unknown }).withArgs, [3, { onTick: '[Function]', nested: ['[Function]'] }])
  t.same((msg.arguments[0] as { authentication: unknown }).authentication, { type: 'token', key: 'abc' })
  t.equal(r.held.get(5), onTick)
  t.equal(r.held.get(6), onDone)
})

t.test('arguments that cannot be encoded throw and leave no callback registered', async (t) => {
  const r = registry()
  const cyclic: Record<string, unknown> = { fn: () => {} }
  cyclic.self = cyclic
  t.throws(() => encodeCall('m', 0, envelopeHead(kite, null), [cyclic], r.register, r.unregister))
  t.equal(r.held.size, 0)
  t.throws(() => encodeCall('m', 0, envelopeHead(kite, null), [{ fn: () => {}, big: 1n }], r.register, r.unregister), TypeError)
  t.equal(r.held.size, 0, 'the function found before the BigInt was unregistered')
  const limited = registry(0, 1)
  t.throws(() => encodeInvocation(3, [() => {}, () => {}], limited.register, limited.unregister), /too many callbacks/)
  t.equal(limited.held.size, 0)
})

t.test('a trace context rides in an extra envelope field that parsing ignores', async (t) => {
  const r = registry()
  const head = withTraceContext(envelopeHead(kite, null), { traceparent: '00-abc-def-01' })
  const msg = parseMessage(encodeCall('square', 0, head, [2], r.register, r.unregister), defaultDnodeLimits)
  t.same((msg.arguments[0] as { traceContext: unknown }).traceContext, { traceparent: '00-abc-def-01' })
  t.same(parseEnvelope(msg.arguments), { kite, authentication: null, withArgs: [2] })
})

t.test('answers are in the one-object form; an object result may carry callbacks', async (t) => {
  const r = registry(9)
  t.equal(encodeResultResponse(3, 16, r.register, r.unregister), '{"method":3,"arguments":[{"error":null,"result":16}],"callbacks":{}}')
  t.equal(encodeResultResponse(3, undefined, r.register, r.unregister), '{"method":3,"arguments":[{"error":null,"result":null}],"callbacks":{}}')
  const stop = (): void => {}
  const msg = parseMessage(encodeResultResponse(3, { id: 'x', stop }, r.register, r.unregister), defaultDnodeLimits)
  t.same(msg.callbacks, { 9: [0, 'result', 'stop'] })
  t.same(parseResponse(msg.arguments), { error: null, result: { id: 'x', stop: '[Function]' } })
  const wire = { type: 'timeout', message: 'late', code: 'KITE_ERR_CALL_TIMEOUT', id: '' }
  const failed = parseMessage(encodeErrorResponse(3, wire), defaultDnodeLimits)
  t.same(parseResponse(failed.arguments), { error: wire, result: null })
})

t.test('a callback invocation and a bare message', async (t) => {
  const r = registry()
  t.equal(encodeInvocation(12, ['tick', 3], r.register, r.unregister), '{"method":12,"arguments":["tick",3],"callbacks":{}}')
  t.equal(encodeMessage('methods', '[]'), '{"method":"methods","arguments":[],"callbacks":{}}')
  const msg = parseMessage(encodeInvocation(12, [{ next: () => {} }], r.register, r.unregister), defaultDnodeLimits)
  t.same(msg.callbacks, { 100: [0, 'next'] })
})
