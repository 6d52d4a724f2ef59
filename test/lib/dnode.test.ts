import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { defaultDnodeLimits, resolveLimits } from '../../lib/dnode/limits.js'
import { ProtocolError, depthExceeds, parseMessage } from '../../lib/dnode/message.js'
import { findFunctions, installAt, isResponseCallbackPath, type FoundFunction } from '../../lib/dnode/scrub.js'
import { parseEnvelope, parseResponse } from '../../lib/protocol/envelope.js'

const limits = defaultDnodeLimits

function refused(text: string, code: number, l = limits): void {
  let caught: unknown = null
  try {
    parseMessage(text, l)
  } catch (err) {
    caught = err
  }
  t.ok(caught instanceof ProtocolError, `refused: ${text.slice(0, 60)}`)
  t.equal((caught as ProtocolError).closeCode, code, `close code for ${text.slice(0, 60)}`)
}

t.test('a Go call with numeric callback paths parses', async (t) => {
  const msg = parseMessage('{"method":"square","arguments":[{"withArgs":[4],"responseCallback":"[Function]"}],"callbacks":{"0":[0,"responseCallback"]}}', limits)
  t.equal(msg.method, 'square')
  t.same(msg.callbacks, { 0: [0, 'responseCallback'] })
  t.ok(isResponseCallbackPath(msg.callbacks['0']!))
})

t.test('a kite.js call with string paths and links parses, links ignored', async (t) => {
  const msg = parseMessage('{"arguments":[{"withArgs":[3,"[Function]"],"responseCallback":"[Function]"}],"callbacks":{"2":["0","withArgs","1"],"3":["0","responseCallback"]},"links":[],"method":"countdown"}', limits)
  t.ok(isResponseCallbackPath(msg.callbacks['3']!))
  const fn = (): void => {}
  t.ok(installAt(msg.arguments, msg.callbacks['2']!, fn))
  t.equal((msg.arguments[0] as { withArgs: unknown[] }).withArgs[1], fn)
})

t.test('missing or null callbacks and arguments are accepted', async (t) => {
  t.same(parseMessage('{"method":3}', limits), { method: 3, arguments: [], callbacks: {} })
  t.same(parseMessage('{"method":3,"arguments":null,"callbacks":null}', limits).callbacks, {})
})

t.test('malformed messages are refused with a close code', async () => {
  refused('{not json', 1007)
  refused('[1,2]', 1007)
  refused('"a string"', 1007)
  refused('{"method":true,"arguments":[]}', 1007)
  refused('{"method":-1,"arguments":[]}', 1007)
  refused('{"method":"x","arguments":{}}', 1007)
  refused('{"method":"x","arguments":[],"callbacks":[]}', 1007)
  refused('{"method":"x","arguments":[],"callbacks":{"a":[0]}}', 1007)
  refused('{"method":"x","arguments":[],"callbacks":{"1":[true]}}', 1007)
  refused('{"method":"x","arguments":[],"callbacks":{"1":[null]}}', 1007)
  refused('{"method":"x","arguments":[],"callbacks":{"1":[]}}', 1007)
  refused('{"method":"x","arguments":[],"callbacks":{"1":[1.5]}}', 1007)
  refused('{"method":"","arguments":[]}', 1008)
  refused(JSON.stringify({ method: 'x'.repeat(300), arguments: [] }), 1008)
})

t.test('size, depth and callback-count limits hold', async () => {
  const small = resolveLimits({ maxMessageBytes: 100 })
  refused(JSON.stringify({ method: 'x', arguments: ['y'.repeat(200)] }), 1009, small)
  refused(JSON.stringify({ method: 'x', arguments: ['é'.repeat(60)] }), 1009, small)
  refused(`{"method":"x","arguments":[${'['.repeat(100)}${']'.repeat(100)}]}`, 1008)
  const callbacks: Record<string, unknown> = {}
  for (let i = 0; i < 5000; i++) callbacks[i] = [0, 'withArgs', i]
  refused(JSON.stringify({ method: 'x', arguments: [], callbacks }), 1008)
})

t.test('depth is counted on arrays and objects, not on brackets inside strings', async (t) => {
  t.notOk(depthExceeds({ a: '[[[[[[[[[[' }, 3))
  t.notOk(depthExceeds([[[1]]], 3))
  t.ok(depthExceeds([[[[1]]]], 3))
  t.ok(depthExceeds({ a: [{ b: 1 }], c: { d: { e: {} } } }, 3))
  t.notOk(depthExceeds(5, 1))
  const deep = JSON.parse('['.repeat(100000) + ']'.repeat(100000)) as unknown
  t.ok(depthExceeds(deep, 64), 'a hundred thousand levels are refused without exhausting the stack')
})

t.test('__proto__ keys never reach a prototype', async (t) => {
  const msg = parseMessage('{"method":"x","arguments":[{"__proto__":{"polluted":1},"a":{"__proto__":{"polluted":2}}}]}', limits)
  const arg = msg.arguments[0] as Record<string, unknown>
  t.equal(Object.getPrototypeOf(arg), Object.prototype)
  t.notOk(Object.hasOwn(arg, '__proto__'))
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal(Object.assign({}, arg).polluted, undefined)
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    refused(JSON.stringify({ method: 'x', arguments: [{}], callbacks: { 1: [0, key] } }), 1007)
    refused(JSON.stringify({ method: 'x', arguments: [{}], callbacks: { 1: [0, key, 'polluted'] } }), 1007)
  }
})

t.test('installAt only replaces values that exist', async (t) => {
  const args: unknown[] = [{ a: ['[Function]'] }]
  t.notOk(installAt(args, [0, 'missing'], 1))
  t.notOk(installAt(args, [0, 'a', 5], 1))
  t.notOk(installAt(args, [0, 'toString'], 1))
  t.notOk(installAt(args, [3, 'a'], 1))
  t.ok(installAt(args, ['0', 'a', '0'], 1))
  t.same(args, [{ a: [1] }])
})

t.test('scrub finds functions at any depth with their paths', async (t) => {
  const f1 = (): void => {}
  const f2 = (): void => {}
  const found: FoundFunction[] = []
  findFunctions([1, { a: [f1, { b: f2 }] }, new Date()], [], found)
  t.same(found.map((f) => f.path), [[1, 'a', 0], [1, 'a', 1, 'b']])
  t.equal(found[0]!.fn, f1)
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  t.throws(() => findFunctions(cyclic, [], []), { name: 'KiteError', code: 'KITE_ERR_SEND_TOO_DEEP', type: 'sendError' })
})

t.test('envelopes: shapes accepted and refused', async (t) => {
  t.same(parseEnvelope([{ withArgs: [4] }]), { kite: null, authentication: null, withArgs: [4] })
  t.same((parseEnvelope([{ withArgs: 4 }]) as { withArgs: unknown[] }).withArgs, [4], 'scalar withArgs from kite.js')
  t.same((parseEnvelope([{ withArgs: null }]) as { withArgs: unknown[] }).withArgs, [])
  for (const bad of [[], [1, 2], [1], [{ kite: 'x' }], [{ kite: { name: 5 } }], [{ authentication: 'x' }], [{ authentication: { type: 1 } }], [null], [[1]]]) {
    t.type(parseEnvelope(bad), 'string', JSON.stringify(bad))
  }
})

t.test('responses: the one-object form and J two-argument form are both read', async (t) => {
  t.same(parseResponse([{ error: null, result: 16 }]), { error: null, result: 16 })
  t.same(parseResponse([{ error: null }]), { error: null, result: null })
  t.same(parseResponse([null, 'pong']), { error: null, result: 'pong' })
  t.same(parseResponse([null]), { error: null, result: null }, 'kite.js callback(null)')
  t.equal(parseResponse([]), null)
  t.equal(parseResponse([{ foo: 1 }]), null)
  t.equal(parseResponse([1, 2, 3]), null)
})

t.test('every kite message in the recorded frames decodes', async (t) => {
  const file = fileURLToPath(new URL('../fixtures/frames/vectors.json', import.meta.url))
  const vectors = JSON.parse(readFileSync(file, 'utf8')) as Array<{ capture: string; frame: string; transport: string; from: string; messages: unknown[] }>
  let count = 0
  for (const v of vectors) {
    let texts: string[]
    if (v.transport === 'websocket') texts = [v.frame]
    else if (v.from === 'client') texts = JSON.parse(v.frame) as string[]
    else if (v.frame.startsWith('a')) texts = JSON.parse(v.frame.slice(1)) as string[]
    else continue
    t.equal(texts.length, v.messages.length, `${v.capture}: message count`)
    texts.forEach((text, i) => {
      const msg = parseMessage(text, limits)
      const expected = v.messages[i] as { method: unknown; arguments: unknown }
      t.equal(msg.method, expected.method, `${v.capture}: method`)
      t.same(msg.arguments, expected.arguments, `${v.capture}: arguments`)
      if (typeof msg.method === 'string' && msg.method !== 'kite.heartbeat') t.type(parseEnvelope(msg.arguments), 'object', `${v.capture}: envelope`)
      if (typeof msg.method === 'number' && msg.arguments.length === 1) t.not(parseResponse(msg.arguments), null)
      count++
    })
  }
  t.ok(count >= 40, `decoded ${count} messages`)
})
