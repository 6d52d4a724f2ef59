import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { kontrol } from '../../plugins/kontrol/index.js'
import { KiteClient } from '../../lib/client/client.js'

process.env.KITE_HOME = t.testdir({})

async function kitePlugins(app: FastifyInstance): Promise<void> {
  await app.register(kiteServer, { name: 'kontrol', version: '0.0.1', username: 'operator' })
  await app.register(kiteAuth, { kiteKey: false })
  await app.register(kontrol, { storage: 'memory' })
  app.kite.handle('whoami', (req) => req.username)
}

async function userJwt(app: FastifyInstance): Promise<void> {
  await app.register(fastifyJwt, { secret: 'user-secret' })
  app.get('/me', async (request) => {
    await request.jwtVerify()
    return { user: request.user }
  })
}

/** The user's JWT routes work unchanged, and kite authentication (kiteKey, Kontrol's tokens) too. */
async function checkBoth(t: Tap.Test, app: FastifyInstance): Promise<void> {
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const token = app.jwt.sign({ name: 'alice' })
  const res = await fetch(`${base}/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(res.status, 200)
  t.match(await res.json(), { user: { name: 'alice' } })
  t.equal((await fetch(`${base}/me`)).status, 401, "the user's jwtVerify still refuses a missing token")
  t.same(Object.keys(app.jwt).sort(), ['cookie', 'decode', 'lookupToken', 'options', 'sign', 'verify'], "no kite namespace in the user's app.jwt")
  t.notOk(app.hasRequestDecorator('kiteAuthJwtVerify'))
  t.notOk(app.hasReplyDecorator('kontrolJwtSign'))
  const c = new KiteClient(`${base}/kite`, { auth: { type: 'kiteKey', key: app.kontrol.service.issueKiteKey('bob') } })
  t.teardown(() => c.close())
  await c.connect()
  t.equal(await c.tell('whoami'), 'bob', 'kiteKey authentication works')
  await c.tell('register', { url: 'http://127.0.0.1:1/kite' })
  const found = (await c.tell('getToken', { username: 'bob', name: 'kite-client' })) as string
  t.type(found, 'string', 'Kontrol signs tokens')
}

t.test("the user's @fastify/jwt registered after kiteAuth and kontrol", async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await kitePlugins(app)
  await userJwt(app)
  await checkBoth(t, app)
})

t.test("the user's @fastify/jwt registered before kiteAuth and kontrol", async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await userJwt(app)
  await kitePlugins(app)
  await checkBoth(t, app)
})

t.test('without the user\'s @fastify/jwt, no JWT decorator appears at all', async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await kitePlugins(app)
  await app.ready()
  t.notOk(app.hasDecorator('jwt'))
  t.notOk(app.hasRequestDecorator('user'))
  t.notOk(app.hasRequestDecorator('kiteAuthJwtVerify'))
  t.notOk(app.hasReplyDecorator('kontrolJwtSign'))
})

