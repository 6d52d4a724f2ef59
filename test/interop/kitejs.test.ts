import t from 'tap'
import { createRequire } from 'node:module'
import type * as KitejsHelpers from '../helpers/kitejs.cjs'
import { KiteClient } from '../../lib/client/client.js'
import { connectClient, startKite } from '../helpers/server.js'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { kiteTracing, kiteTracer } from '../../plugins/kite-tracing/index.js'
import { recordSpans } from '../helpers/tracing.js'

const require = createRequire(import.meta.url)
const kitejs = require('../helpers/kitejs.cjs') as typeof KitejsHelpers

/** kite.js's client: what it sends is the real kite.js 1.0.13 on the wire. */
const clientKinds = [
  { name: 'kite.js SockJS (websocket)', transport: 'sockjs-ws', url: (u: string) => u.replace(/\/kite$/, ''), prefix: '/kite' },
  { name: 'kite.js SockJS (xhr-polling)', transport: 'sockjs-xhr', url: (u: string) => u.replace(/\/kite$/, ''), prefix: '/kite' },
  { name: 'kite.js raw WebSocket on the prefix', transport: 'ws', url: (u: string) => u.replace('http', 'ws'), prefix: undefined },
  { name: 'kite.js raw WebSocket on <prefix>/websocket', transport: 'ws', url: (u: string) => `${u.replace('http', 'ws')}/websocket`, prefix: undefined },
]

for (const kind of clientKinds) {
  t.test(`${kind.name} calls our kite`, async (t) => {
    const { url } = await startKite(t)
    const kite = kitejs.connectKite(kind.url(url), { transport: kind.transport, prefix: kind.prefix })
    t.teardown(() => kitejs.closeKite(kite))
    t.equal(await kite.tell('square', [4]), 16, 'square([4]) → 16')
    t.equal(await kite.tell('square', 5), 25, 'a scalar withArgs (kite.js promise API) is taken as one argument')
    const seen: unknown[] = []
    t.equal(await kite.tell('count', [3, (i: unknown) => seen.push(i)]), 'done')
    t.same(seen, [1, 2, 3], 'a callback argument is called back three times')
    await t.rejects(kite.tell('nope', []), { type: 'methodNotFound', message: 'Method not found: nope' })
    t.equal(await kite.tell('kite.ping', []), 'pong')
  })
}

for (const transport of ['ws', 'sockjs'] as const) {
  t.test(`our KiteClient calls a kite.js server over ${transport === 'ws' ? 'raw WebSocket' : 'SockJS'}`, async (t) => {
    const server = await kitejs.startKiteServer({
      transport,
      prefix: '/kite',
      api: {
        square: (x: number, cb: (err: unknown, result: unknown) => void) => cb(null, x * x),
        countdown: (n: number, progress: (err: unknown, i: number) => void, cb: (err: unknown, r: unknown) => void) => {
          for (let i = n; i > 0; i--) progress(null, i)
          cb(null, 'done')
        },
      },
    })
    t.teardown(() => server.close())
    const kinds = transport === 'ws' ? (['websocket'] as const) : (['sockjs', 'xhr-polling'] as const)
    for (const kind of kinds) {
      const client = await connectClient(t, server.url, { transport: kind, timeout: 5000 })
      t.equal(await client.tell('square', 4), 16, `${kind}: square(4) → 16`)
      const seen: unknown[] = []
      t.equal(await client.tell('countdown', 3, (arg: unknown) => seen.push(arg)), 'done', `${kind}: callback method`)
      t.same(seen, [{ error: null, result: 3 }, { error: null, result: 2 }, { error: null, result: 1 }], `${kind}: kite.js calls callbacks with one {error, result} object`)
      await t.rejects(client.tell('nope'), { name: 'KiteError', type: 'timeout' }, `${kind}: kite.js never answers unknown methods; our timeout ends the wait`)
      await client.close()
    }
  })
}

t.test('kite.js calls back methods of our client (two-argument answers accepted)', async (t) => {
  const { app, url } = await startKite(t)
  const kite = kitejs.connectKite(url.replace('http', 'ws'), { transport: 'ws', api: { greet: (name: string, cb: (e: unknown, r: unknown) => void) => cb(null, `hi ${name}`) } })
  t.teardown(() => kitejs.closeKite(kite))
  t.equal(await kite.tell('square', [2]), 4)
  const [conn] = app.kite.connections
  t.equal(await conn!.tell('greet', ['bob']), 'hi bob', 'kite.js answers [null, result]; we read it')
  t.equal(await conn!.tell('kite.ping'), 'pong')
})

t.test('a KiteClient with a ws:// URL defaults to raw WebSocket', async (t) => {
  const c = new KiteClient('ws://127.0.0.1:1/kite')
  t.equal(c.transportName, 'websocket')
  t.equal(new KiteClient('http://127.0.0.1:1/kite').transportName, 'sockjs')
})

t.test('with tracing on: kite.js clients call a traced kite (SockJS and raw WebSocket)', async (t) => {
  const rec = recordSpans()
  const { url } = await startKite(t, {}, async (app) => {
    await app.register(kiteTracing, { tracer: rec.tracer })
  })
  for (const kind of [clientKinds[0]!, clientKinds[2]!]) {
    const kite = kitejs.connectKite(kind.url(url), { transport: kind.transport, prefix: kind.prefix })
    t.equal(await kite.tell('square', [4]), 16, `${kind.name}: square([4]) → 16`)
    const seen: unknown[] = []
    t.equal(await kite.tell('count', [2, (i: unknown) => seen.push(i)]), 'done', `${kind.name}: a callback method`)
    t.same(seen, [1, 2])
    await kitejs.closeKite(kite)
  }
  const spans = rec.spans()
  t.equal(spans.length, 4, 'a server span per call')
  for (const s of spans) {
    t.equal(s.kind, SpanKind.SERVER)
    t.equal(s.status.code, SpanStatusCode.OK)
    t.equal(s.parentSpanContext, undefined, 'kite.js sends no trace context: each is a root span')
  }
})

t.test('with tracing on: a traced KiteClient calls kite.js servers (the traceContext field is ignored by kite.js)', async (t) => {
  const rec = recordSpans()
  for (const transport of ['ws', 'sockjs'] as const) {
    const server = await kitejs.startKiteServer({
      transport,
      prefix: '/kite',
      api: { square: (x: number, cb: (err: unknown, result: unknown) => void) => cb(null, x * x) },
    })
    t.teardown(() => server.close())
    const kinds = transport === 'ws' ? (['websocket'] as const) : (['sockjs', 'xhr-polling'] as const)
    for (const kind of kinds) {
      const client = await connectClient(t, server.url, { transport: kind, timeout: 5000, observer: kiteTracer({ tracer: rec.tracer }) })
      t.equal(await client.tell('square', 5), 25, `${kind}: square(5) → 25 with traceContext in the envelope`)
      await client.close()
    }
  }
  const spans = rec.spans()
  t.equal(spans.length, 3)
  for (const s of spans) t.match(s, { kind: SpanKind.CLIENT, name: 'kite square', status: { code: SpanStatusCode.OK } })
})
