import t from 'tap'
import { RawPeer, call, pingCall } from '../helpers/raw-peer.js'
import { startKite } from '../helpers/server.js'

type Framing = 'raw' | 'sockjs'

async function setup(t: Tap.Test) {
  const { app, url } = await startKite(t, { limits: { maxMessageBytes: 65536 } })
  app.kite.handle('echo', (req) => req.args[0]).disableAuthentication()
  const wsBase = url.replace('http', 'ws')
  const open = async (framing: Framing): Promise<RawPeer> => {
    const peer = await RawPeer.open(framing === 'raw' ? wsBase : `${wsBase}/123/abcdefgh/websocket`)
    t.teardown(() => peer.close())
    if (framing === 'sockjs') await peer.waitFor((f) => f === 'o')
    return peer
  }
  const wrap = (framing: Framing, text: string): string => (framing === 'raw' ? text : JSON.stringify([text]))
  const reply = (framing: Framing, frame: string): unknown => {
    const text = framing === 'raw' ? frame : (JSON.parse(frame.slice(1)) as string[])[0]!
    return JSON.parse(text)
  }
  const isReply = (framing: Framing) => (f: string) => (framing === 'raw' ? f.startsWith('{') : f.startsWith('a'))
  /** After the bad input, a new connection still answers kite.ping. */
  const stillServes = async (framing: Framing): Promise<void> => {
    const peer = await open(framing)
    peer.send(wrap(framing, pingCall(7)))
    const answer = reply(framing, await peer.waitFor(isReply(framing))) as { method: number; arguments: unknown[] }
    t.same(answer, { method: 7, arguments: [{ error: null, result: 'pong' }], callbacks: {} }, 'a second connection still answers kite.ping')
    peer.close()
  }
  return { app, open, wrap, reply, isReply, stillServes }
}

for (const framing of ['raw', 'sockjs'] as const) {
  t.test(`${framing} WebSocket: messages that close the connection with a code`, async (t) => {
    const s = await setup(t)
    const callbacks: Record<string, unknown> = {}
    for (let i = 0; i < 1000; i++) callbacks[i] = [0, 'withArgs', i]
    const cases: Array<[string, string, number]> = [
      ['malformed JSON', s.wrap(framing, '{"method":'), 1007],
      ['a message over the size limit', s.wrap(framing, call('echo', ['x'.repeat(70000)])), 1009],
      ['deep nesting', s.wrap(framing, call('echo', [JSON.parse('['.repeat(200) + ']'.repeat(200))]).replace('""', '')), 1008],
      ['thousands of callbacks', s.wrap(framing, JSON.stringify({ method: 'echo', arguments: [{ withArgs: [] }], callbacks })), 1008],
      ['a callback path through __proto__', s.wrap(framing, JSON.stringify({ method: 'echo', arguments: [{ withArgs: [] }], callbacks: { 1: [0, '__proto__', 'x'] } })), 1007],
      ['a callback path with a boolean step', s.wrap(framing, JSON.stringify({ method: 'echo', arguments: [{ withArgs: [] }], callbacks: { 1: [0, true] } })), 1007],
      ['an envelope of the wrong shape with no response callback', s.wrap(framing, JSON.stringify({ method: 'echo', arguments: [1, 2] })), 1008],
    ]
    if (framing === 'sockjs') {
      cases.push(['a SockJS payload that is a bare string', JSON.stringify(pingCall()), 1007])
      cases.push(['a SockJS payload that is an array of numbers', '[1,2]', 1007])
      cases.push(['a SockJS payload that is an object', '{"a":1}', 1007])
      cases.push(['a SockJS payload that is not JSON', 'hello', 1007])
    }
    for (const [name, text, code] of cases) {
      const peer = await s.open(framing)
      peer.send(text)
      t.equal(await peer.closed, code, `${name}: closed with ${code}`)
      if (framing === 'sockjs') t.match(peer.frames.at(-1), new RegExp(`^c\\[${code},`), `${name}: SockJS close frame`)
    }
    await s.stillServes(framing)
  })

  t.test(`${framing} WebSocket: input answered with an error, connection kept`, async (t) => {
    const s = await setup(t)
    const peer = await s.open(framing)
    const ask = async (text: string, id: number): Promise<{ error: { type: string; message: string } | null; result: unknown }> => {
      peer.send(s.wrap(framing, text))
      const frame = await peer.waitFor((f) => s.isReply(framing)(f) && (s.reply(framing, f) as { method: number }).method === id)
      return (s.reply(framing, frame) as { arguments: [{ error: { type: string; message: string } | null; result: unknown }] }).arguments[0]
    }
    for (const [i, args] of [[], [1, 2], [1], [{ kite: 'x' }], [{ authentication: 'x' }], [null]].entries()) {
      const id = 10 + i
      const answer = await ask(JSON.stringify({ method: 'echo', arguments: args, callbacks: { [id]: [0, 'responseCallback'] } }), id)
      t.equal(answer.error?.type, 'argumentError', `envelope ${JSON.stringify(args)}: argumentError`)
    }
    const unknown = await ask(call('nope', [], 30), 30)
    t.same(unknown.error, { type: 'methodNotFound', message: 'Method not found: nope', code: 'KITE_ERR_METHOD_NOT_FOUND', id: '' })
    peer.send(s.wrap(framing, JSON.stringify({ method: 999, arguments: ['stale'], callbacks: {} })))
    const polluted = await ask(call('echo', [JSON.parse('{"__proto__":{"polluted":true},"ok":1}')], 31).replace('"ok":1', '"__proto__":{"polluted":true},"ok":1'), 31)
    t.same(polluted.result, { ok: 1 }, '__proto__ keys are dropped from arguments')
    t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was touched')
    const ping = await ask(pingCall(32), 32)
    t.equal(ping.result, 'pong', 'the connection still works after an unknown callback id and the rest')
    t.equal(peer.closeCode, null)
  })
}

t.test('XHR polling: bad sends get the sockjs-go status codes', async (t) => {
  const { url } = await startKite(t, { limits: { maxMessageBytes: 4096 } })
  const session = `${url}/123/badsession`
  const post = (path: string, body?: string) => fetch(`${session}/${path}`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } })
  t.equal((await post('xhr_send', '["x"]')).status, 404, 'unknown session: 404')
  const open = await post('xhr')
  t.equal(await open.text(), 'o\n')
  const empty = await post('xhr_send', '')
  t.equal(empty.status, 500)
  t.equal(await empty.text(), 'Payload expected.')
  const broken = await post('xhr_send', '[')
  t.equal(broken.status, 500)
  t.equal(await broken.text(), 'Broken JSON encoding.')
  const notStrings = await post('xhr_send', '[1,2]')
  t.equal(notStrings.status, 500)
  t.equal((await post('xhr_send', JSON.stringify(['x'.repeat(20000)]))).status, 413, 'a body over the limit: 413')
  const ok = await post('xhr_send', JSON.stringify([pingCall(3)]))
  t.equal(ok.status, 204)
  t.equal(await (await post('xhr')).text(), `a${JSON.stringify([JSON.stringify({ method: 3, arguments: [{ error: null, result: 'pong' }], callbacks: {} })])}\n`)
  const bad = await post('xhr_send', JSON.stringify(['{broken']))
  t.equal(bad.status, 204, 'the send itself is accepted')
  t.match(await (await post('xhr')).text(), /^c\[1007,/, 'then the session is closed with 1007')
  const other = `${url}/123/another`
  t.equal(await (await fetch(`${other}/xhr`, { method: 'POST' })).text(), 'o\n', 'other sessions are unaffected')
})

t.test('XHR polling: a second poll while one waits gets 2010', async (t) => {
  const { url } = await startKite(t)
  const session = `${url}/123/twopolls`
  t.equal(await (await fetch(`${session}/xhr`, { method: 'POST' })).text(), 'o\n')
  const first = fetch(`${session}/xhr`, { method: 'POST' })
  await new Promise((r) => setTimeout(r, 50))
  t.equal(await (await fetch(`${session}/xhr`, { method: 'POST' })).text(), 'c[2010,"Another connection still open"]\n')
  await fetch(`${session}/xhr_send`, { method: 'POST', body: JSON.stringify([pingCall(1)]) })
  t.match(await (await first).text(), /^a\[/, 'the waiting poll gets the reply')
})
