import t from 'tap'
import Fastify from 'fastify'
import { KiteError } from '../../lib/errors.js'
import { KiteConnection } from '../../lib/connection/connection.js'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { connectClient, once, startKite, TRANSPORTS } from '../helpers/server.js'

for (const transport of TRANSPORTS) {
  t.test(`over ${transport}`, async (t) => {
    const { app, url } = await startKite(t)
    const client = await connectClient(t, url, { transport })

    t.test('a method answers with its result', async (t) => {
      t.equal(await client.tell('square', 4), 16)
    })

    t.test('a callback argument is called back several times', async (t) => {
      const seen: number[] = []
      t.equal(await client.tell('count', 3, (i: number) => seen.push(i)), 'done')
      t.same(seen, [1, 2, 3])
    })

    t.test('an unknown method gets methodNotFound', async (t) => {
      await t.rejects(client.tell('nope'), { type: 'methodNotFound', message: 'Method not found: nope' })
    })

    t.test('a handler error comes back as genericError with the request id', async (t) => {
      const err = (await client.tell('square', 'x').catch((e: unknown) => e)) as KiteError
      t.equal(err.type, 'genericError')
      t.equal(err.message, 'square needs a number')
      t.match(err.id, /^[0-9a-f]{16}$/)
    })

    t.test('the server calls methods on the connected client', async (t) => {
      client.handle('whoami', (req) => `${req.args[0]} from ${req.kite.name}`)
      const [conn] = [...app.kite.connections].filter((c) => c.transport.startsWith(transport === 'websocket' ? 'websocket' : transport === 'sockjs' ? 'sockjs-websocket' : 'sockjs-xhr'))
      t.ok(conn instanceof KiteConnection)
      t.equal(await conn!.tell('whoami', ['hi']), 'hi from math')
      t.equal(await conn!.tell('kite.ping'), 'pong')
      await t.rejects(conn!.tell('nope'), { name: 'KiteError', type: 'methodNotFound' })
    })

    t.test('calls run concurrently and each gets its own answer', async (t) => {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => client.tell('square', i)))
      t.same(results, Array.from({ length: 50 }, (_, i) => i * i))
    })
  })
}

t.test('built-in methods', async (t) => {
  const { url } = await startKite(t)
  const client = await connectClient(t, url)
  t.equal(await client.tell('kite.ping'), 'pong', 'kite.ping needs no credentials')
  await t.rejects(client.tell('kite.log', 'hello'), { type: 'authenticationError', message: 'No authentication information is provided' })
  await t.rejects(client.tell('kite.print', 'x'), { name: 'KiteError', type: 'methodNotFound' }, 'terminal methods are off by default')
})

t.test('kite.heartbeat pings now and then at the interval, until the caller leaves', async (t) => {
  const { app, url } = await startKite(t, {}, (app) => {
    app.kite.handle('kite.heartbeat', app.kite.methods.methods.get('kite.heartbeat')!.handler).disableAuthentication()
  })
  const client = await connectClient(t, url)
  let pings = 0
  const twoPings = new Promise<void>((resolve) => {
    void client.tell('kite.heartbeat', 1, () => {
      if (++pings === 2) resolve()
    })
  })
  await twoPings
  t.equal(pings, 2, 'one at once, one after a second')
  const gone = once(app.kite, 'disconnect')
  await client.close()
  await gone
  t.equal(app.kite.connections.size, 0, 'the server forgets the connection and its heartbeat timer')
  await t.rejects(client.tell('kite.ping'), { name: 'KiteError', type: 'sendError' })
})

t.test('terminal methods are registered only when asked', async (t) => {
  const { app } = await startKite(t, { terminalMethods: true })
  t.ok(app.kite.methods.methods.has('kite.print'))
  t.ok(app.kite.methods.methods.has('kite.prompt'))
  t.ok(app.kite.methods.methods.has('kite.getPass'))
})

t.test('authentication hook', async (t) => {
  const { app, url } = await startKite(t, {
    authenticators: {
      sessionID: ({ authentication }) => {
        if (authentication.key !== 'good') throw new Error('unknown session')
        return { username: 'alice' }
      },
    },
  })
  app.kite.handle('whoami', (req) => ({ username: req.username, claimed: req.kite.username }))
  const anonymous = await connectClient(t, url)
  await t.rejects(anonymous.tell('whoami'), { type: 'authenticationError', message: 'No authentication information is provided' })
  const wrongType = await connectClient(t, url, { auth: { type: 'magic', key: 'x' } })
  await t.rejects(wrongType.tell('whoami'), { type: 'authenticationError', message: 'Unknown authentication type: magic' })
  const bad = await connectClient(t, url, { auth: { type: 'sessionID', key: 'bad' } })
  await t.rejects(bad.tell('whoami'), { type: 'authenticationError', message: 'sessionID: unknown session' })
  const good = await connectClient(t, url, { auth: { type: 'sessionID', key: 'good' }, kite: { username: 'mallory' } })
  t.same(await good.tell('whoami'), { username: 'alice', claimed: 'alice' }, 'the authenticated username replaces the claimed one')
  good.auth = { type: 'sessionID', key: 'bad' }
  await t.rejects(good.tell('whoami'), { name: 'KiteError', type: 'authenticationError' }, 'credentials swapped without reconnecting')
  app.kite.addAuthenticator('apiKey', () => ({ username: 'bob' }))
  const late = await connectClient(t, url, { auth: { type: 'apiKey', key: 'k' } })
  t.same(await late.tell('whoami'), { username: 'bob', claimed: 'bob' }, 'authenticators can be added at run time')
})

t.test('handler chains: order, context, errors and final handlers', async (t) => {
  const order: string[] = []
  const { app, url } = await startKite(t, {}, (app) => {
    app.kite.preHandle((req) => {
      order.push('kite pre')
      req.context.seen = [...((req.context.seen as string[]) ?? []), 'kite pre']
    })
    app.kite.postHandle(() => void order.push('kite post'))
    app.kite.finalHandle(() => {
      order.push('kite final')
    })
  })
  app.kite
    .handle('chain', (req) => {
      order.push('main')
      return req.context.seen
    })
    .disableAuthentication()
    .preHandle((req) => {
      order.push('method pre')
      req.context.seen = ['method pre']
    })
    .postHandle(() => void order.push('method post'))
    .finalHandle(() => {
      order.push('method final')
    })
  app.kite
    .handle('sqrt', (req) => {
      const n = req.args[0] as number
      if (n < 0) throw new Error('negative')
      return Math.sqrt(n)
    })
    .disableAuthentication()
    .finalHandle((req, { error }) => {
      if (error?.message === 'negative') return { result: `${Math.sqrt(-(req.args[0] as number))}i` }
    })
  app.kite.handle('stopsEarly', () => 'never').disableAuthentication().preHandle(() => {
    throw new Error('pre refused')
  })
  const client = await connectClient(t, url)
  t.same(await client.tell('chain'), ['method pre', 'kite pre'])
  t.same(order, ['method pre', 'kite pre', 'main', 'method post', 'kite post', 'method final', 'kite final'])
  t.equal(await client.tell('sqrt', -4), '2i', 'a final handler turns an error into a result')
  t.equal(await client.tell('sqrt', 9), 3)
  await t.rejects(client.tell('stopsEarly'), { message: 'pre refused' }, 'the first error stops the chain')
})

t.test('method handling modes pick the result', async (t) => {
  const { app, url } = await startKite(t)
  const add = (name: string, mode: 'method' | 'first' | 'latest', pre: unknown, main: unknown, post: unknown): void => {
    app.kite
      .handle(name, () => main)
      .disableAuthentication()
      .methodHandling(mode)
      .preHandle(() => pre)
      .postHandle(() => post)
  }
  add('m', 'method', 'pre', 'main', 'post')
  add('f', 'first', null, 'main', 'post')
  add('f0', 'first', null, null, null)
  add('l', 'latest', 'pre', 'main', 'post')
  add('lNull', 'latest', 'pre', 'main', undefined)
  const client = await connectClient(t, url)
  t.equal(await client.tell('m'), 'main')
  t.equal(await client.tell('f'), 'main')
  t.equal(await client.tell('f0'), null)
  t.equal(await client.tell('l'), 'post')
  t.equal(await client.tell('lNull'), null, 'latest answers the last result even when it is empty')
  app.kite.setMethodHandling('first')
  app.kite.handle('kiteWide', () => 'main').disableAuthentication().preHandle(() => 'pre')
  t.equal(await client.tell('kiteWide'), 'pre', 'the kite-wide mode applies to methods without their own')
})

t.test('throttle: a token bucket per method answers requestLimitError when empty', async (t) => {
  let now = 0
  const { app, url } = await startKite(t, { clock: () => now })
  app.kite.handle('limited', () => 'ok').disableAuthentication().throttle({ interval: 1000, capacity: 2 })
  const client = await connectClient(t, url)
  t.equal(await client.tell('limited'), 'ok')
  t.equal(await client.tell('limited'), 'ok')
  await t.rejects(client.tell('limited'), { type: 'requestLimitError', message: 'The maximum request rate is exceeded.' })
  now += 1000
  t.equal(await client.tell('limited'), 'ok', 'one token back after one interval')
})

t.test('connection events: connect, firstRequest, disconnect', async (t) => {
  const events: string[] = []
  const { app, url } = await startKite(t)
  app.kite.on('connect', () => events.push('connect'))
  app.kite.on('firstRequest', (conn) => events.push(`first ${conn.remoteKite?.name}`))
  const gone = once(app.kite, 'disconnect')
  const client = await connectClient(t, url, { kite: { name: 'caller' } })
  await client.tell('square', 2)
  await client.tell('square', 3)
  await client.close()
  await gone
  t.same(events, ['connect', 'first caller'])
})

t.test('per-connection concurrency limit', async (t) => {
  let release: () => void = () => {}
  const gate = new Promise<void>((r) => (release = r))
  const { app, url } = await startKite(t, { maxConcurrentCalls: 2 })
  app.kite.handle('slow', () => gate.then(() => 'ok')).disableAuthentication()
  const client = await connectClient(t, url)
  const a = client.tell('slow')
  const b = client.tell('slow')
  await t.rejects(client.tell('slow'), { name: 'KiteError', type: 'requestLimitError' })
  release()
  t.same(await Promise.all([a, b]), ['ok', 'ok'])
})

t.test('options are checked when the plugin registers', async (t) => {
  for (const bad of [{ name: '', version: '1.0.0' }, { name: 'x', version: '1.0' }, { name: 'x', version: '1.0.0', prefix: 'kite' }, { name: 'x', version: '1.0.0', limits: { maxDepth: 0 } }, { name: 'x', version: '1.0.0', heartbeatSeconds: -1 }]) {
    const app = Fastify()
    await t.rejects(async () => app.register(kiteServer, bad).ready(), TypeError, JSON.stringify(bad))
    await app.close()
  }
})

t.test('HTTP routes and kite methods share one server', async (t) => {
  const { url, base } = await startKite(t, {}, (app) => {
    app.get('/hello', async () => ({ hello: 'world' }))
  })
  const res = await fetch(`${base}/hello`)
  t.same(await res.json(), { hello: 'world' })
  const client = await connectClient(t, url)
  t.equal(await client.tell('square', 5), 25)
  const info = await fetch(`${url}/info`)
  t.equal(info.headers.get('content-type'), 'application/json; charset=UTF-8')
  t.match(await info.json(), { websocket: true, cookie_needed: false, origins: ['*:*'] })
  t.equal(await (await fetch(url)).text(), 'Welcome to SockJS!\n')
})
