import t from 'tap'
import { Writable } from 'node:stream'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from 'fastify'
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { KiteClient } from '../../lib/client/client.js'
import { kiteCallback } from '../../lib/methods/callback-schema.js'
import type { KiteCallback } from '../../lib/methods/schema.js'
import type { KiteServerOptions } from '../../plugins/kite-server/options.js'
import { makeKontrol } from '../helpers/tokens.js'

/** Every log line the app writes, parsed, at every level down to trace. */
function logSink(): { lines: Array<{ level: number; msg: string }>; stream: Writable } {
  const lines: Array<{ level: number; msg: string }> = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as { level: number; msg: string })
      done()
    },
  })
  return { lines, stream }
}

interface Started {
  app: FastifyInstance
  url: string
  base: string
  client: KiteClient
  logs: Array<{ level: number; msg: string }>
}

/** The app as a TypeBox user types it: `req.args` inferred from the schemas. */
type TypedApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>

async function start(
  t: Tap.Test,
  setup: (app: TypedApp) => void | Promise<void>,
  o: { fastify?: FastifyServerOptions; kite?: Partial<KiteServerOptions>; before?: (app: FastifyInstance) => Promise<void> } = {},
): Promise<Started> {
  const { lines, stream } = logSink()
  const app = Fastify({ logger: { level: 'trace', stream }, ...o.fastify })
  t.teardown(() => app.close())
  await o.before?.(app)
  await app.register(kiteServer, { name: 'math', version: '1.0.0', ...o.kite })
  await setup(app.withTypeProvider<TypeBoxTypeProvider>())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new KiteClient(`${base}/kite`, { transport: 'websocket' })
  t.teardown(() => client.close())
  await client.connect()
  return { app, url: `${base}/kite`, base, client, logs: lines }
}


t.test('arguments are checked by schema before the handler runs: types, required, min/max, nested objects, formats', async (t) => {
  let ran = 0
  const { client, logs } = await start(t, (app) => {
    app.kite.handle('square', { schema: { args: [Type.Number()] }, auth: false }, (req) => {
      ran++
      return (req.args[0] as number) ** 2
    })
    app.kite.handle(
      'createUser',
      {
        schema: {
          args: Type.Tuple([
            Type.Object({
              name: Type.String({ minLength: 1, maxLength: 8 }),
              age: Type.Integer({ minimum: 0, maximum: 150 }),
              email: Type.String({ format: 'email' }),
              address: Type.Object({ city: Type.String(), zip: Type.String({ pattern: '^[0-9]{5}$' }) }),
            }),
          ]),
        },
        auth: false,
      },
      (req) => {
        ran++
        return (req.args[0] as { name: string }).name
      },
    )
    app.kite.handle('when', { schema: { args: [Type.String({ format: 'date-time' }), Type.Optional(Type.Boolean())] }, auth: false }, () => {
      ran++
      return 'ok'
    })
  })
  const user = { name: 'ada', age: 36, email: 'ada@example.com', address: { city: 'London', zip: '12345' } }
  t.equal(await client.tell('square', 4), 16)
  t.equal(await client.tell('createUser', user), 'ada')
  t.equal(await client.tell('when', '2026-11-30T05:00:00Z'), 'ok')
  t.equal(ran, 3)

  const logsBefore = logs.length
  const refused: Array<[string, unknown[], string]> = [
    ['square', ['four'], 'args/0 must be number'],
    ['square', [], 'args must NOT have fewer than 1 items'],
    ['square', [1, 2], 'args must NOT have more than 1 items'],
    ['createUser', [{ ...user, name: undefined }], "args/0 must have required property 'name'"],
    ['createUser', [{ ...user, name: 'a-very-long-name' }], 'args/0/name must NOT have more than 8 characters'],
    ['createUser', [{ ...user, age: -1 }], 'args/0/age must be >= 0'],
    ['createUser', [{ ...user, age: 200 }], 'args/0/age must be <= 150'],
    ['createUser', [{ ...user, age: 1.5 }], 'args/0/age must be integer'],
    ['createUser', [{ ...user, email: 'not an address' }], 'args/0/email must match format "email"'],
    ['createUser', [{ ...user, address: { city: 'London' } }], "args/0/address must have required property 'zip'"],
    ['createUser', [{ ...user, address: { city: 'London', zip: 'abc' } }], 'args/0/address/zip must match pattern "^[0-9]{5}$"'],
    ['when', ['yesterday'], 'args/0 must match format "date-time"'],
  ]
  for (const [method, args, message] of refused) {
    const err = await client.call(method, args).then(
      () => null,
      (e: unknown) => e,
    )
    t.match(err, { type: 'argumentError', code: 'KITE_ERR_ARGUMENT_INVALID', message }, `${method}(${JSON.stringify(args)}) → ${message}`)
    t.match((err as { id: string }).id, /^[0-9a-f]{16}$/, 'the error carries the request id')
  }
  t.equal(ran, 3, 'no handler ran for a refused call')
  t.same(
    logs.slice(logsBefore).filter((l) => l.level > 20 && l.msg !== 'kite call'), // the per-call info line (issue 11) is the request log, not a warning
    [],
    'refused arguments log nothing above debug',
  )
  t.ok(logs.slice(logsBefore).some((l) => l.level === 20 && l.msg === 'call failed'), 'they are logged at debug')
})

t.test("the app's Ajv options apply: Fastify's default coerces; coerceTypes false does not; shared schemas resolve", async (t) => {
  const coercing = await start(t, (app) => {
    app.kite.handle('square', { schema: { args: [{ type: 'number' }] }, auth: false }, (req) => (req.args[0] as number) ** 2)
  })
  t.equal(await coercing.client.tell('square', '4'), 16, "Fastify's default Ajv coerces '4' to 4, as for a route")

  const strict = await start(
    t,
    (app) => {
      app.addSchema({ $id: 'point', type: 'object', required: ['x', 'y'], properties: { x: { type: 'number' }, y: { type: 'number' } } })
      app.kite.handle('square', { schema: { args: [{ type: 'number' }] }, auth: false }, (req) => (req.args[0] as number) ** 2)
      app.kite.handle('norm', { schema: { args: [{ $ref: 'point#' }] }, auth: false }, (req) => {
        const p = req.args[0] as { x: number; y: number }
        return Math.hypot(p.x, p.y)
      })
    },
    { fastify: { ajv: { customOptions: { coerceTypes: false } } } },
  )
  await t.rejects(strict.client.tell('square', '4'), { type: 'argumentError', message: 'args/0 must be number' }, 'ajv.customOptions reach kite methods')
  t.equal(await strict.client.tell('norm', { x: 3, y: 4 }), 5, 'a schema added with app.addSchema is found by $ref')
  await t.rejects(strict.client.tell('norm', { x: 3 }), { type: 'argumentError', message: "args/0 must have required property 'y'" })
})

t.test("a validator compiler set with app.setValidatorCompiler (TypeBox's) is the one used", async (t) => {
  const compiled: string[] = []
  const { client } = await start(t, (app) => {
    app.setValidatorCompiler((route) => {
      compiled.push(String(route.url))
      return TypeBoxValidatorCompiler(route)
    })
    app.kite.handle('square', { schema: { args: Type.Tuple([Type.Number()]) }, auth: false }, (req) => req.args[0] ** 2)
  })
  t.same(compiled, ['kite:square'], 'compiled once, by the app\'s compiler, when the app became ready')
  t.equal(await client.tell('square', 3), 9)
  t.equal(await client.tell('square', 4), 16)
  await t.rejects(client.tell('square', 'x'), { type: 'argumentError', message: /args\/0 .*number/i })
  t.same(compiled, ['kite:square'], 'never compiled again on calls')
})

t.test('arguments are checked before pre-handlers; errors thrown by handlers keep a code', async (t) => {
  const seen: string[] = []
  const { client } = await start(t, (app) => {
    app.kite.preHandle((req) => {
      seen.push(`kite pre ${req.method}`)
    })
    app.kite
      .handle('square', { schema: { args: [Type.Number()] }, auth: false }, (req) => (req.args[0] as number) ** 2)
      .preHandle(() => {
        seen.push('method pre')
      })
    app.kite.handle('fails', { auth: false }, () => {
      throw new Error('it broke')
    })
  })
  await t.rejects(client.tell('square', 'x'), { name: 'KiteError', type: 'argumentError' })
  t.same(seen, [], 'no pre-handler ran for invalid arguments')
  t.equal(await client.tell('square', 2), 4)
  t.same(seen, ['method pre', 'kite pre square'])
  await t.rejects(client.tell('fails'), { type: 'genericError', message: 'it broke', code: 'KITE_ERR_HANDLER_FAILED' }, 'never an empty code')
})

t.test('result schemas: a wrong result is an error in development; checkResults false turns the check off', async (t) => {
  const setup = (app: FastifyInstance): void => {
    app.kite.handle('square', { schema: { args: [Type.Number()], result: Type.Number() }, auth: false }, (req) => (req.args[0] as number) ** 2)
    app.kite.handle('lies', { schema: { args: [Type.Number()], result: Type.Number() }, auth: false }, (req) => `n${String(req.args[0])}` as unknown as number)
    app.kite.handle('liesLater', { schema: { result: Type.Object({ ok: Type.Boolean() }) }, auth: false }, async () => ({ ok: 'yes' }) as unknown as { ok: boolean })
  }
  const checked = await start(t, setup)
  t.equal(await checked.client.tell('square', 3), 9)
  await t.rejects(checked.client.tell('lies', 3), { type: 'genericError', code: 'KITE_ERR_RESULT_INVALID', message: 'result of lies does not match its schema: result must be number' })
  t.ok(checked.logs.some((l) => l.level === 40 && l.msg === 'result does not match the result schema'), "this kite's own bug is a warning")
  await t.rejects(checked.client.tell('liesLater'), { code: 'KITE_ERR_RESULT_INVALID', message: 'result of liesLater does not match its schema: result/ok must be boolean' })

  const unchecked = await start(t, setup, { kite: { checkResults: false } })
  // Unchecked (production), a result is still written by its schema's serializer, as Fastify writes a
  // route's response: one it cannot write is an error, not a wrong value.
  await t.rejects(unchecked.client.tell('lies', 3), { type: 'genericError', code: 'KITE_ERR_HANDLER_FAILED', message: /^cannot encode result: The value "n3" cannot be converted to a number/ })
  t.equal(await unchecked.client.tell('square', 3), 9)
})

t.test("result schemas serialize results with the app's serializer compiler (fast-json-stringify), as Fastify serializes responses", async (t) => {
  const { client } = await start(t, (app) => {
    const User = Type.Object({ name: Type.String(), age: Type.Integer() })
    app.kite.handle('user', { schema: { result: User }, auth: false }, () => ({ name: 'ann', age: 41, password: 'hunter2' }) as { name: string; age: number })
    app.kite.handle('users', { schema: { result: Type.Array(User) }, auth: false }, async () => {
      const rows = [{ name: 'bo', age: 7, token: 'x' }]
      return rows
    })
    app.kite.handle('plain', { auth: false }, () => ({ name: 'cy', password: 'kept' }))
    app.kite.handle('withCallback', { schema: { result: Type.Object({ n: Type.Number(), done: kiteCallback() }) }, auth: false }, () => ({ n: 1, done: (() => 'called') as unknown as KiteCallback<[]> }))
  })
  t.same(await client.tell('user'), { name: 'ann', age: 41 }, 'properties the schema does not name are left out (a password never leaks)')
  t.same(await client.tell('users'), [{ name: 'bo', age: 7 }], 'asynchronous handlers too')
  t.same(await client.tell('plain'), { name: 'cy', password: 'kept' }, 'a method without a result schema answers what it returns')
  const withCallback = (await client.tell('withCallback')) as { n: number; done: () => Promise<unknown> }
  t.equal(withCallback.n, 1)
  t.equal(typeof withCallback.done, 'function', 'a result schema that declares callbacks is encoded as before: its functions stay callable')

  const custom = await start(t, (app) => {
    app.kite.handle('user', { schema: { result: Type.Object({ name: Type.String() }) }, auth: false }, () => ({ name: 'dee' }))
  }, { before: async (app) => void app.setSerializerCompiler(() => (data) => JSON.stringify({ serializedBy: 'the app', data })) })
  t.same(await custom.client.tell('user'), { serializedBy: 'the app', data: { name: 'dee' } }, 'a serializer compiler set with app.setSerializerCompiler is the one used')
})

t.test('callback arguments: declared with kiteCallback(), validated as functions, awaited as promises', async (t) => {
  const { app, client } = await start(t, (app) => {
    app.kite.handle('countdown', { schema: { args: [Type.Integer({ minimum: 0 }), kiteCallback([Type.Integer()])] }, auth: false }, async (req) => {
      const [n, onTick] = req.args
      for (let i = n; i > 0; i--) await onTick(i)
      return 'done'
    })
    app.kite.handle(
      'watch',
      { schema: { args: [Type.Object({ path: Type.String(), onChange: kiteCallback([Type.String()]), onError: Type.Optional(kiteCallback()) })] }, auth: false },
      async (req) => {
        const [{ path, onChange, onError }] = req.args
        await onChange(`${path} changed`)
        return onError === undefined ? 'no onError' : 'with onError'
      },
    )
    app.kite.handle('later', { schema: { args: [kiteCallback()] }, auth: false }, async (req) => {
      const [cb] = req.args
      await new Promise<void>((resolve) => req.connection.once('close', () => resolve()))
      return cb().then(
        () => 'sent',
        (err: Error & { type?: string }) => err.type,
      )
    })
  })
  const ticks: number[] = []
  t.equal(await client.tell('countdown', 3, (i: number) => ticks.push(i)), 'done')
  t.same(ticks, [3, 2, 1])
  await t.rejects(client.tell('countdown', 3, 'not a function'), { type: 'argumentError', message: 'args/1 must be a callback' })
  await t.rejects(client.tell('countdown', 3), { type: 'argumentError', message: 'args must NOT have fewer than 2 items' })
  const changes: string[] = []
  t.equal(await client.tell('watch', { path: '/etc', onChange: (s: string) => changes.push(s) }), 'no onError', 'a callback nested in an object')
  t.same(changes, ['/etc changed'])
  t.equal(await client.tell('watch', { path: '/tmp', onChange: () => {}, onError: () => {} }), 'with onError', 'an optional callback')
  await t.rejects(client.tell('watch', { path: '/etc', onChange: 42 }), { type: 'argumentError', message: 'args/0/onChange must be a callback' })

  // A callback of a caller that has gone rejects with sendError.
  const other = new KiteClient(client.url, { transport: 'websocket' })
  await other.connect()
  const answered = new Promise<unknown>((resolve) => {
    const method = app.kite.methods.methods.get('later')!
    method.finalHandle((_req, outcome) => {
      resolve(outcome.result)
    })
  })
  void other.tell('later', () => {}).catch(() => {})
  await new Promise<void>((resolve) => {
    const check = (): void => (app.kite.methods.inFlight > 0 ? resolve() : void setTimeout(check, 5))
    check()
  })
  await other.close()
  t.equal(await answered, 'sendError', "calling the callback of a caller that has gone rejects with sendError")
})

t.test('kite.describe lists methods with their schemas; it needs credentials unless describe is public', async (t) => {
  const kontrol = makeKontrol()
  const setup = async (app: FastifyInstance): Promise<void> => {
    await app.register(kiteAuth, { trustedKontrolKeys: [kontrol.publicKey], kiteKey: false })
    app.kite.handle('square', { schema: { args: [Type.Number()], result: Type.Number(), description: 'n squared' }, auth: false }, (req) => (req.args[0] as number) ** 2)
    app.kite.handle('countdown', { schema: { args: [Type.Integer(), kiteCallback([Type.Integer()])] } }, () => 'done')
    app.kite.handle('plain', () => null)
  }
  const { client, url } = await start(t, setup)
  await t.rejects(client.tell('kite.describe'), { name: 'KiteError', type: 'authenticationError' }, 'authentication as configured: needs credentials by default')
  const authed = new KiteClient(url, { transport: 'websocket', auth: { type: 'kiteKey', key: kontrol.kiteKey('alice') } })
  t.teardown(() => authed.close())
  await authed.connect()
  const described = (await authed.tell('kite.describe')) as { kite: { name: string }; methods: Array<{ name: string; authentication: boolean; description: string; schema: unknown }> }
  t.equal(described.kite.name, 'math')
  const byName = new Map(described.methods.map((m) => [m.name, m]))
  t.same(byName.get('square'), {
    name: 'square',
    description: 'n squared',
    authentication: false,
    http: false,
    schema: { args: { type: 'array', items: [{ type: 'number' }], minItems: 1, additionalItems: false }, result: { type: 'number' } },
  })
  t.same((byName.get('countdown')!.schema as { args: { items: unknown[] } }).args.items[1], { 'x-kite-callback': true, 'x-kite-callback-params': [{ type: 'integer' }] }, 'callbacks are marked')
  t.same(byName.get('plain'), { name: 'plain', description: '', authentication: true, http: false, schema: null })
  t.ok(byName.has('kite.ping'))

  const open = await start(t, setup, { kite: { describe: 'public' } })
  t.match(await open.client.tell('kite.describe'), { kite: { name: 'math' } }, "describe: 'public' needs no credentials")
  const off = await start(t, setup, { kite: { describe: false } })
  await t.rejects(off.client.tell('kite.describe'), { name: 'KiteError', type: 'methodNotFound' }, 'describe: false answers as a Go kite does')
})

t.test('the HTTP mirror: same method, schema, authentication and handlers over POST <prefix>/methods/<name>', async (t) => {
  const kontrol = makeKontrol()
  const order: string[] = []
  const { base, client } = await start(t, async (app) => {
    await app.register(kiteAuth, { trustedKontrolKeys: [kontrol.publicKey], kiteKey: false })
    app.kite.postHandle((req) => {
      order.push(`post ${req.method} ${req.connection.transport}`)
    })
    app.kite.handle('square', { schema: { args: [Type.Number()], result: Type.Number() }, auth: false, http: true }, (req) => (req.args[0] as number) ** 2)
    app.kite.handle('whoami', { http: true }, (req) => req.username)
    app.kite.handle('countdown', { schema: { args: [Type.Integer(), kiteCallback()] }, auth: false, http: true }, () => 'done')
    app.kite.handle('fails', { auth: false, http: true }, () => {
      throw new Error('it broke')
    })
    app.kite.handle('notMirrored', { auth: false }, () => 1)
  })
  const post = async (name: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> => {
    const res = await fetch(`${base}/kite/methods/${name}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
    return { status: res.status, body: await res.json() }
  }
  t.same(await post('square', { args: [4] }), { status: 200, body: { result: 16 } })
  t.same(order, ['post square http'], 'post-handlers run for HTTP calls')
  const bad = await post('square', { args: ['four'] })
  t.equal(bad.status, 400)
  t.match(bad.body, { error: { type: 'argumentError', message: 'args/0 must be number', code: 'KITE_ERR_ARGUMENT_INVALID' } }, 'the same schema and message as over the kite connection')
  t.match((await post('square', { nope: 1 })).body, { error: { type: 'argumentError', message: 'the body must be {"args": [...]}' } })

  const anonymous = await post('whoami', { args: [] })
  t.equal(anonymous.status, 401)
  t.match(anonymous.body, { error: { type: 'authenticationError', code: 'KITE_ERR_AUTH_MISSING' } })
  t.same(await post('whoami', { args: [] }, { authorization: `Bearer ${kontrol.token('bob', '/unknown/unknown/math')}` }), { status: 200, body: { result: 'bob' } }, 'a bearer token')
  t.same(await post('whoami', { args: [] }, { 'kite-key': kontrol.kiteKey('carol') }), { status: 200, body: { result: 'carol' } }, 'a kite.key header')
  t.same(await post('whoami', { args: [] }, { authorization: `KiteKey ${kontrol.kiteKey('dave')}` }), { status: 200, body: { result: 'dave' } }, 'Authorization: KiteKey')
  const forged = await post('whoami', { args: [] }, { authorization: 'Bearer not.a.token' })
  t.equal(forged.status, 401, 'a bad token is refused')

  const cb = await post('countdown', { args: [3, 'cb'] })
  t.equal(cb.status, 400)
  t.match(cb.body, { error: { type: 'argumentError', message: 'countdown takes callbacks (args/1), which HTTP cannot carry: call it over a kite connection' } })
  t.match(await post('fails', { args: [] }), { status: 500, body: { error: { type: 'genericError', message: 'it broke', code: 'KITE_ERR_HANDLER_FAILED' } } })
  t.equal((await fetch(`${base}/kite/methods/notMirrored`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"args":[]}' })).status, 404, 'only methods that opt in')
  t.equal(await client.tell('square', 5), 25, 'the kite connection is unchanged')
})

t.test('the HTTP mirror for every method (http: true on kite-server), and its OpenAPI through @fastify/swagger', async (t) => {
  const { app, base } = await start(
    t,
    (app) => {
      app.kite.handle('square', { schema: { args: [Type.Number()], result: Type.Number(), description: 'n squared' }, auth: false }, (req) => (req.args[0] as number) ** 2)
      app.kite.handle('countdown', { schema: { args: [Type.Integer(), kiteCallback([Type.Integer()])] } }, () => 'done')
      app.kite.handle('plain', { auth: false }, (req) => req.args.length)
      app.kite.handle('hidden', { auth: false, http: false }, () => 1)
    },
    {
      kite: { http: true, httpSecurity: [{ kiteToken: [] }, { kiteKey: [] }] },
      before: async (app) => {
        const swagger = (await import('@fastify/swagger')).default
        await app.register(swagger, {
          openapi: {
            info: { title: 'math', version: '1.0.0' },
            components: {
              securitySchemes: { kiteToken: { type: 'http', scheme: 'bearer' }, kiteKey: { type: 'apiKey', in: 'header', name: 'Kite-Key' } },
            },
          },
        })
      },
    },
  )
  const res = await fetch(`${base}/kite/methods/plain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"args":[1,2,3]}' })
  t.same(await res.json(), { result: 3 }, 'a method without a schema, mirrored by the kite-wide option')
  t.equal((await fetch(`${base}/kite/methods/hidden`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"args":[]}' })).status, 404, 'http: false opts out')
  t.equal((await fetch(`${base}/kite/methods/kite.ping`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"args":[]}' })).status, 404, 'built-ins are not mirrored')
  // The app's OpenAPI document, as app.swagger() gives it.
  const doc = (app as unknown as { swagger(): { paths: Record<string, Record<string, any>> } }).swagger()
  const square = doc.paths['/kite/methods/square']?.post
  t.ok(square, 'square is in the OpenAPI document')
  t.equal(square.description, 'n squared')
  t.same(square.tags, ['kite'])
  t.same(square.requestBody.content['application/json'].schema, {
    type: 'object',
    required: ['args'],
    properties: { args: { type: 'array', items: [{ type: 'number' }], minItems: 1, additionalItems: false } },
  })
  t.same(square.responses['200'].content['application/json'].schema, { type: 'object', properties: { result: { type: 'number' } } })
  const countdown = doc.paths['/kite/methods/countdown']?.post
  t.match(countdown.requestBody.content['application/json'].schema.properties.args.items[1], { 'x-kite-callback': true }, 'a callback argument is marked')
  t.same(countdown.security, [{ kiteToken: [] }, { kiteKey: [] }], 'a method that needs credentials says which (httpSecurity)')
  t.notOk(square.security, 'one without credentials does not')
  t.ok(doc.paths['/kite/methods/plain'])
  t.notOk(doc.paths['/kite/methods/hidden'])
})
