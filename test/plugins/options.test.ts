import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { kontrol } from '../../plugins/kontrol/index.js'
import { kontrolRegister } from '../../plugins/kontrol-register/index.js'
import { KiteClient } from '../../lib/client/client.js'
import { tryEveryValue, type Setup } from '../helpers/option-matrix.js'

// A structurally valid kite.key (claims only; nothing here verifies its signature).
const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url')
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
const kiteKey = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss: 'kontrol', sub: 'alice', kontrolURL: 'http://127.0.0.1:1/kite' })}.c2ln`

t.setTimeout(240_000)
const unhandled: unknown[] = []
process.on('unhandledRejection', (err) => unhandled.push(err))

const base = async (app: FastifyInstance): Promise<unknown> => app.register(kiteServer, { name: 'math', version: '1.0.0' }).after()
const plugins: Record<string, { setup: Setup; options: string[] }> = {
  'kite-server': {
    setup: (app, o) => app.register(kiteServer, { name: 'math', version: '1.0.0', ...o } as never),
    options: ['name', 'version', 'username', 'environment', 'region', 'hostname', 'id', 'prefix', 'limits', 'maxConcurrentCalls', 'methodHandling', 'terminalMethods', 'heartbeatSeconds', 'disconnectDelaySeconds', 'closeGraceMs', 'callTimeoutMs', 'authenticators', 'clock', 'maxBufferedBytes', 'backpressureGraceMs', 'handshakeTimeoutMs', 'idleTimeoutMs', 'maxAuthFailures', 'authFailureWindowMs', 'maxCallbacksHeld', 'warnIntervalMs', 'http', 'httpSecurity', 'describe', 'checkResults'],
  },
  'kite-auth': {
    setup: async (app, o) => { await base(app); return app.register(kiteAuth, { kiteKey: false, ...o } as never) },
    options: ['trustedKontrolKeys', 'kiteKey', 'audience', 'leeway', 'kiteKeyTTL', 'failureTTL', 'cacheSize', 'authenticators', 'clock'],
  },
  kontrol: {
    setup: async (app, o) => { await base(app); await app.register(kiteAuth, { kiteKey: false }).after(); return app.register(kontrol, { storage: 'memory', keyPair: { publicKey, privateKey }, ...o } as never) },
    options: ['storage', 'keyPair', 'kontrolURL', 'keyRefreshInterval', 'heartbeatInterval', 'heartbeatGrace', 'heartbeatSlack', 'sweepInterval', 'tokenTTL', 'tokenLeeway', 'tokenCacheSize', 'signingThreads', 'machineAuthenticate', 'clock'],
  },
  'kontrol-register': {
    setup: async (app, o) => { await base(app); return app.register(kontrolRegister, { kiteKey, kontrolURL: 'http://127.0.0.1:1/kite', ...o } as never) },
    options: ['kontrolURL', 'kiteKey', 'url', 'http', 'transport', 'backoff', 'timeout', 'renewBefore', 'proxy', 'registerURL', 'tls'],
  },
}

t.test('the issue\'s case: kontrolRegister with transport carrier-pigeon and timeout -5 fails at register, naming the option', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await base(app)
  await t.rejects(async () => app.register(kontrolRegister, { kiteKey, transport: 'carrier-pigeon' as never, timeout: -5 }).ready(), { code: 'KITE_ERR_CONFIG_INVALID', option: 'transport', message: /^kontrol-register option transport must be one of 'sockjs', 'websocket', 'xhr-polling', 'auto', got "carrier-pigeon"/ })
  const app2 = Fastify()
  t.teardown(() => app2.close())
  await base(app2)
  await t.rejects(async () => app2.register(kontrolRegister, { kiteKey, timeout: -5 }).ready(), { option: 'timeout', message: /kontrol-register option timeout must be a number of at least 1, got -5/ })
})

t.test('every option of every plugin, given any kind of value, is accepted or refused at register with an error naming it; never later', async (t) => {
  for (const [plugin, { setup, options }] of Object.entries(plugins)) {
    const listen = plugin === 'kontrol-register' ? (app: FastifyInstance) => app.listen({ port: 0, host: '127.0.0.1' }) : undefined
    const refused = await tryEveryValue(t, plugin, setup, options, listen)
    t.ok(refused > options.length * 5, `${plugin}: ${refused} bad values refused at register`)
  }
  await new Promise((r) => setTimeout(r, 100))
  t.same(unhandled.map(String), [], 'no unhandled rejection')
})

t.test('KiteClient checks its options in the constructor with the same errors', async (t) => {
  t.throws(() => new KiteClient('http://x/kite', { transport: 'carrier-pigeon' as never }), { code: 'KITE_ERR_CONFIG_INVALID', message: /^KiteClient option transport/ })
  t.throws(() => new KiteClient('http://x/kite', { timeout: -5 }), { message: /^KiteClient option timeout must be a number of at least 0, got -5/ })
  t.throws(() => new KiteClient('http://x/kite', { backoff: { initialMs: 0 } }), { message: /^KiteClient option backoff/ })
  t.throws(() => new KiteClient('ftp://x/kite'), { message: /^KiteClient option url/ })
})
