import t from 'tap'
import { RawPeer } from '../helpers/raw-peer.js'
import { capture } from '../helpers/frames.js'
import { startKite } from '../helpers/server.js'
import { kiteTracing } from '../../plugins/kite-tracing/index.js'
import { kiteMetrics } from '../../plugins/kite-metrics/index.js'
import { recordSpans } from '../helpers/tracing.js'

/**
 * The recorded client frames of Go kites and kite.js, sent byte for byte to
 * our kite: each must get the answer its sender got from the upstream server.
 */
type T = Tap.Test

/**
 * With `observed`, tracing (a real SDK, so trace context is sent) and metrics are on: every
 * recorded exchange must still get its recorded answer, and the kite records its spans.
 */
async function mathKite(t: T, observed: boolean) {
  const rec = observed ? recordSpans() : null
  const checkSpans = (): void => {
    if (rec === null) return
    const spans = rec.spans()
    t.ok(spans.some((s) => s.name === 'kite square'), `traced: a server span was recorded (${spans.map((s) => s.name).join(', ')})`)
  }
  const started = await startKite(t, {}, async (app) => {
    if (observed) {
      await app.register(kiteTracing, { tracer: rec!.tracer })
      await app.register(kiteMetrics)
    }
    // The upstream math example: square(number), or square({Number, Name}) which
    // also sends a kite.log to the caller first (capture 03).
    app.kite.handle('square', async (req) => {
      const [arg] = req.args
      if (typeof arg === 'number') return arg * arg
      const { Number: n } = arg as { Number: number; Name: string }
      void req.connection.tell('kite.log', [`Message from ${app.kite.identity.name}: "You have requested square of ${n}"`]).catch(() => {})
      return n * n
    }).disableAuthentication()
  })
  return { ...started, checkSpans }
}

function expectedReply(prefix: string) {
  const server = capture(prefix).find((v) => v.from === 'server' && v.messages.some((m) => m.method === 0))!
  return server.messages.find((m) => m.method === 0)!
}

for (const observed of [false, true])
for (const prefix of ['01', '03', '04', '05', '08', '09']) {
  t.test(`capture ${prefix}: the recorded SockJS WebSocket client frame gets the recorded answer${observed ? ', tracing and metrics on' : ''}`, async (t) => {
    const { url, checkSpans } = await mathKite(t, observed)
    const client = capture(prefix).find((v) => v.from === 'client')!
    const peer = await RawPeer.open(`${url.replace('http', 'ws')}/602/e4fb2814b508f394b528/websocket`)
    t.teardown(() => peer.close())
    peer.send(client.frame) // as G does, without waiting for `o` (capture 09)
    const frame = await peer.waitFor((f) => f.startsWith('a') && f.includes('\\"method\\":0'))
    t.equal(peer.frames[0], 'o', 'the open frame comes first')
    const messages = (JSON.parse(frame.slice(1)) as string[]).map((m) => JSON.parse(m) as { method: number; arguments: unknown[]; callbacks: object })
    const reply = messages.find((m) => m.method === 0)!
    const expected = expectedReply(prefix)
    if (prefix === '05') {
      t.same(reply.arguments, [{ error: null, result: 16 }], 'a bare withArgs (kite.js promise API) is answered, where Go answered argumentError')
    } else {
      t.same(reply.arguments, expected.arguments, 'same {error, result} as upstream')
    }
    t.same(reply.callbacks, {}, 'callbacks always sent')
    t.same(Object.keys(reply.arguments[0] as object), ['error', 'result'], 'error first, then result, as G writes them')
    if (prefix === '03') {
      const log = peer.frames.find((f) => f.includes('kite.log'))!
      const call = JSON.parse((JSON.parse(log.slice(1)) as string[])[0]!) as { method: string; arguments: Array<Record<string, unknown>>; callbacks: object }
      const recorded = capture('03').find((v) => v.from === 'server' && v.frame.includes('kite.log'))!.messages[0]!
      t.equal(call.method, 'kite.log')
      const keys = Object.keys(call.arguments[0]!)
      if (observed) {
        t.equal(keys[0], 'traceContext', 'traced: the trace context rides in an extra first field, which Go ignores')
        t.match((call.arguments[0]!.traceContext as { traceparent: string }).traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
      }
      t.same(keys.filter((k) => k !== 'traceContext'), Object.keys(recorded.arguments[0] as object), 'envelope keys in G order')
      t.same(call.arguments[0]!.withArgs, (recorded.arguments[0] as Record<string, unknown>).withArgs, 'the kite.log message')
      t.same(call.callbacks, recorded.callbacks, 'response callback registered as [0,"responseCallback"], ids from 0')
    }
    checkSpans()
  })
}

for (const observed of [false, true])
for (const prefix of ['06', '07']) {
  t.test(`capture ${prefix}: the recorded raw WebSocket client frame gets the recorded answer${observed ? ', tracing and metrics on' : ''}`, async (t) => {
    const { url, checkSpans } = await mathKite(t, observed)
    const client = capture(prefix).find((v) => v.from === 'client')!
    const peer = await RawPeer.open(url.replace('http', 'ws'))
    t.teardown(() => peer.close())
    peer.send(client.frame)
    const reply = JSON.parse(await peer.waitFor((f) => f.startsWith('{'))) as { method: number; arguments: unknown[] }
    t.equal(reply.method, 0)
    t.same(reply.arguments, [{ error: null, result: 16 }])
    checkSpans()
  })
}

for (const observed of [false, true])
for (const prefix of ['02', '10']) {
  t.test(`capture ${prefix}: the recorded XHR polling exchange gets the recorded answers${observed ? ', tracing and metrics on' : ''}`, async (t) => {
    const { url, checkSpans } = await mathKite(t, observed)
    const vectors = capture(prefix)
    const client = vectors.find((v) => v.from === 'client')!
    const session = `${url}/775/609fa0a8ae43808c01c8`
    const post = (path: string, body = '') => fetch(`${session}/${path}`, { method: 'POST', body, headers: { 'Content-Type': 'text/plain' } })
    const open = await post('xhr')
    t.equal(open.status, 200)
    t.equal(open.headers.get('content-type'), 'application/javascript; charset=UTF-8')
    t.equal(open.headers.get('access-control-allow-credentials'), 'true')
    t.equal(await open.text(), 'o\n')
    const poll = post('xhr')
    const sent = await post('xhr_send', client.frame)
    t.equal(sent.status, 204)
    const recorded = vectors.find((v) => v.from === 'server' && v.frame.startsWith('a'))!
    const body = await (await poll).text()
    const got = (JSON.parse(body.slice(1)) as string[]).map((m) => JSON.parse(m) as { method: number; arguments: unknown[] })
    t.same(got[0]!.arguments, recorded.messages[0]!.arguments)
    t.ok(body.endsWith('\n'), 'one frame per response, newline terminated')
    checkSpans()
  })
}
