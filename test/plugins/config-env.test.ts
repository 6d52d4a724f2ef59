import t from 'tap'
import Fastify from 'fastify'
import { connect } from 'node:net'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import pino from 'pino'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { kontrolRegister } from '../../plugins/kontrol-register/index.js'
import { KiteClient } from '../../lib/client/client.js'
import { writeKiteKey } from '../../lib/kitekey.js'
import { makeKontrol } from '../helpers/tokens.js'
import { eventually, startKontrol } from '../helpers/kontrol.js'

// Each test sets KITE_* variables for the plugins registered inside it (tap runs this file in its own process).
function withEnv(t: Tap.Test, vars: Record<string, string>): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]))
  Object.assign(process.env, vars)
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })
}


const emptyHome = t.testdir({})
process.env.KITE_HOME = emptyHome

t.test('KITE_USERNAME, KITE_ENVIRONMENT, KITE_REGION give the kite its identity, and Kontrol registers it so; options win', async (t) => {
  const k = await startKontrol(t)
  withEnv(t, { KITE_ENVIRONMENT: 'production', KITE_REGION: 'eu-west', KITE_USERNAME: 'ignored-by-kite-key' })
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0' })
  t.match(app.kite.identity, { environment: 'production', region: 'eu-west', username: 'ignored-by-kite-key' })
  await app.register(kiteAuth, { kiteKey: k.kiteKey('alice') })
  await app.register(kontrolRegister, { kiteKey: k.kiteKey('alice'), kontrolURL: k.url })
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.kontrolRegister.ready
  const [record] = await k.app.kontrol.storage.query({ name: 'math' }, 0)
  t.match(record!.kite, { username: 'alice', environment: 'production', region: 'eu-west' }, 'registered as environment production, region eu-west (username from the kite.key)')

  const opts = Fastify({ logger: false })
  t.teardown(() => opts.close())
  await opts.register(kiteServer, { name: 'math', version: '1.0.0', environment: 'staging' })
  t.match(opts.kite.identity, { environment: 'staging', region: 'eu-west', username: 'ignored-by-kite-key' }, 'an option wins over the variable')
})

t.test('KITE_HOME: the kite.key there gives the username (below KITE_USERNAME)', async (t) => {
  const home = t.testdir({})
  const kontrol = makeKontrol('kontrol-user')
  await writeKiteKey(kontrol.kiteKey('keyuser', { kontrolURL: 'http://127.0.0.1:1/kite' }), join(home, 'kite.key'))
  withEnv(t, { KITE_HOME: home })
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0' })
  t.equal(app.kite.identity.username, 'keyuser')
  await app.register(kiteAuth)
  t.equal(app.kiteAuth.trustedKeyCount, 1, "kite-auth trusts the kite.key's Kontrol key")
})

t.test('KITE_HANDSHAKE_TIMEOUT is kite-server handshakeTimeoutMs: a silent socket is dropped after it', async (t) => {
  withEnv(t, { KITE_HANDSHAKE_TIMEOUT: '300ms' })
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0' })
  t.equal(app.kite.options.handshakeTimeoutMs, 300)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const started = Date.now()
  const socket = connect(port, '127.0.0.1')
  await new Promise((resolve) => socket.once('close', resolve))
  const elapsed = Date.now() - started
  t.ok(elapsed >= 250 && elapsed < 8000, `dropped after ${elapsed} ms (not the 10 s default)`)
})

t.test('KITE_VERIFY_TTL is how long kite-auth remembers a verified kite.key', async (t) => {
  withEnv(t, { KITE_VERIFY_TTL: '2s' })
  const kontrol = makeKontrol('kontrol-user')
  let now = Date.now()
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0' })
  await app.register(kiteAuth, { kiteKey: false, trustedKontrolKeys: [kontrol.publicKey], clock: () => now })
  app.kite.handle('who', (req) => req.username)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const key = kontrol.kiteKey('bob')
  const call = async (): Promise<unknown> => {
    const c = new KiteClient(`${base}/kite`, { transport: 'websocket', auth: { type: 'kiteKey', key } })
    await c.connect()
    try {
      return await c.tell('who')
    } finally {
      await c.close()
    }
  }
  t.equal(await call(), 'bob')
  now += 1000
  t.equal(await call(), 'bob')
  t.equal(app.kiteAuth.verifications, 1, 'remembered within 2 s')
  now += 1500
  t.equal(await call(), 'bob')
  t.equal(app.kiteAuth.verifications, 2, 'verified again after 2 s (the default would be 5 min)')
})

t.test('KITE_LOG_LEVEL sets the level of the kite plugins (debug lines appear under an info app logger)', async (t) => {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb() } })
  const run = async (level: string | null): Promise<number> => {
    lines.length = 0
    if (level !== null) process.env.KITE_LOG_LEVEL = level
    else delete process.env.KITE_LOG_LEVEL
    const app = Fastify({ loggerInstance: pino({ level: 'info' }, stream) })
    await app.register(kiteServer, { name: 'math', version: '1.0.0' })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    const c = new KiteClient(`${base}/kite`)
    await c.connect()
    await c.tell('kite.ping')
    await c.close()
    await app.close()
    return lines.filter((l) => l.level === 20 && l.plugin === 'kite-server').length
  }
  t.teardown(() => { delete process.env.KITE_LOG_LEVEL })
  t.equal(await run(null), 0, 'no debug lines by default')
  t.ok((await run('DEBUG')) > 0, 'KITE_LOG_LEVEL=DEBUG: debug lines from the kite')
  t.equal(await run('ERROR'), 0)
  process.env.KITE_LOG_LEVEL = 'LOUD'
  await t.rejects(async () => Fastify().register(kiteServer, { name: 'math', version: '1.0.0' }).ready(), { code: 'KITE_ERR_CONFIG_INVALID', message: /KITE_LOG_LEVEL/ }, 'a bad value fails at register')
})

t.test('KITE_KONTROL_URL, KITE_TIMEOUT and KITE_TRANSPORT drive kontrol-register', async (t) => {
  const k = await startKontrol(t)
  withEnv(t, { KITE_KONTROL_URL: k.url, KITE_TRANSPORT: 'XHRPolling' })
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0' })
  await app.register(kiteAuth, { kiteKey: k.kiteKey('alice') })
  await app.register(kontrolRegister, { kiteKey: k.kiteKey('alice') })
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.kontrolRegister.ready
  await eventually(() => [...k.app.kite.connections].some((c) => c.remoteKite?.name === 'math'), 5000)
  const conn = [...k.app.kite.connections].find((c) => c.remoteKite?.name === 'math')!
  t.equal(conn.transport, 'sockjs-xhr', 'KITE_TRANSPORT=XHRPolling: registered over XHR polling')

  withEnv(t, { KITE_KONTROL_URL: 'http://127.0.0.1:1/kite', KITE_TIMEOUT: '400ms', KITE_TRANSPORT: 'WebSocket' })
  const lost = Fastify({ logger: false })
  t.teardown(() => lost.close())
  await lost.register(kiteServer, { name: 'math', version: '1.0.0' })
  await lost.register(kontrolRegister, { kiteKey: k.kiteKey('alice') })
  await lost.listen({ port: 0, host: '127.0.0.1' })
  await t.rejects(lost.kite.getKites({ name: 'math' }), { code: 'KITE_ERR_CALL_TIMEOUT', message: /in 400ms/ }, 'KITE_TIMEOUT bounds calls to Kontrol')
})
