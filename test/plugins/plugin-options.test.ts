import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { systemInfo } from '../../plugins/systeminfo/index.js'
import { kiteReverseProxy } from '../../plugins/reverse-proxy/index.js'
import { kiteTunnelProxy } from '../../plugins/tunnel-proxy/index.js'
import { kiteMetrics } from '../../plugins/kite-metrics/index.js'
import { kiteTracing } from '../../plugins/kite-tracing/index.js'
import { tryEveryValue, type Setup } from '../helpers/option-matrix.js'

// The plugins issue 11 left out of the shared option checker: every option, any kind of value,
// accepted or refused at register with `<plugin> option <name> …`; never an unhandled rejection.
t.setTimeout(240_000)
const unhandled: unknown[] = []
process.on('unhandledRejection', (err) => unhandled.push(err))

const newPair = (): { publicKey: string; privateKey: string } => generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
const keyPair = newPair()
const otherPair = newPair()

const base = async (app: FastifyInstance): Promise<unknown> => app.register(kiteServer, { name: 'math', version: '1.0.0' }).after()
/** The proxies build their URLs from the listening address: listen and ask, so a bad value cannot fail later. */
const listenAndAsk = async (app: FastifyInstance): Promise<void> => {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const proxy = app.hasDecorator('kiteReverseProxy') ? app.kiteReverseProxy : app.kiteTunnelProxy
  proxy.publicBase()
  proxy.kiteURL()
}

const plugins: Record<string, { setup: Setup; options: string[]; after?: (app: FastifyInstance) => Promise<void> }> = {
  systeminfo: {
    setup: async (app, o) => { await base(app); return app.register(systemInfo, o as never) },
    options: ['systemInfoPath', 'livePath', 'readyPath', 'readyWhen', 'readyCheckTimeoutMs', 'maxEventLoopDelayMs', 'maxHeapUsedBytes', 'maxRssBytes', 'maxEventLoopUtilization', 'sampleIntervalMs'],
  },
  'reverse-proxy': {
    setup: (app, o) => app.register(kiteReverseProxy, o as never),
    options: ['publicHost', 'publicPort', 'scheme', 'version', 'region', 'environment', 'kite', 'requestTimeoutMs'],
    after: listenAndAsk,
  },
  'tunnel-proxy': {
    setup: (app, o) => app.register(kiteTunnelProxy, { keyPair, ...o } as never),
    options: ['publicHost', 'scheme', 'version', 'region', 'environment', 'kite', 'keyPair', 'tokenTTL', 'tunnelTimeoutMs', 'maxQueued'],
    after: listenAndAsk,
  },
  'kite-metrics': {
    setup: async (app, o) => { await base(app); return app.register(kiteMetrics, o as never) },
    options: ['registry', 'prefix', 'buckets', 'path', 'defaultMetrics'],
  },
  'kite-tracing': {
    setup: async (app, o) => { await base(app); return app.register(kiteTracing, o as never) },
    options: ['tracer', 'tracerProvider'],
  },
}

for (const [plugin, { setup, options, after }] of Object.entries(plugins)) {
  t.test(`${plugin}: every option, given any kind of value, is accepted or refused at register with an error naming it`, async (t) => {
    const refused = await tryEveryValue(t, plugin, setup, options, after)
    t.ok(refused >= options.length * 5, `${plugin}: ${refused} bad values refused at register`)
  })
}

/** Registers `setup` with `options` and expects the named refusal. */
async function refuses(t: Tap.Test, plugin: string, options: Record<string, unknown>, option: string, message: RegExp): Promise<void> {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await t.rejects(async () => { await plugins[plugin]!.setup(app, options); await app.ready() }, { code: 'KITE_ERR_CONFIG_INVALID', plugin, option, message }, `${plugin} ${option}`)
}

t.test('the messages say what is wanted', async (t) => {
  await refuses(t, 'systeminfo', { livePath: '/health', readyPath: '/health' }, 'readyPath', /^systeminfo option readyPath must differ from livePath, both are \/health$/)
  await refuses(t, 'systeminfo', { systemInfoPath: 'systeminfo' }, 'systemInfoPath', /must be a path like \/systeminfo or false, got "systeminfo"/)
  await refuses(t, 'systeminfo', { maxEventLoopUtilization: 2 }, 'maxEventLoopUtilization', /must be a number above 0 and at most 1, got 2/)
  await refuses(t, 'systeminfo', { sampleIntervalMs: 0 }, 'sampleIntervalMs', /must be a number above 0 \(a positive number\), got 0/)
  await refuses(t, 'reverse-proxy', { publicPort: 70000 }, 'publicPort', /must be an integer from 0 to 65535, got 70000/)
  await refuses(t, 'reverse-proxy', { scheme: 'ftp' }, 'scheme', /must be one of 'http', 'https', got "ftp"/)
  await refuses(t, 'reverse-proxy', { version: '1.0' }, 'version', /must have 3 dot-separated parts like 1\.0\.0, got "1\.0"/)
  await refuses(t, 'reverse-proxy', { environment: 'a/b' }, 'environment', /must not contain "\/"/)
  await refuses(t, 'tunnel-proxy', { keyPair: { publicKey: otherPair.publicKey, privateKey: keyPair.privateKey } }, 'keyPair', /must be a matching pair/)
  await refuses(t, 'tunnel-proxy', { keyPair: { publicKey: 'nope', privateKey: 'nope' } }, 'keyPair', /must be an RSA key pair \(PEM\)/)
  await refuses(t, 'tunnel-proxy', { maxQueued: { messages: 0 } }, 'maxQueued.messages', /must be an integer of at least 1, got 0/)
  await refuses(t, 'tunnel-proxy', { publicHost: 'example.com/x' }, 'publicHost', /must be host\[:port\]/)
  await refuses(t, 'kite-metrics', { registry: {} }, 'registry', /must be a prom-client Registry, got an object/)
  await refuses(t, 'kite-metrics', { buckets: [] }, 'buckets', /must be a non-empty array of positive numbers/)
  await refuses(t, 'kite-metrics', { prefix: 'kite-' }, 'prefix', /must be a metric name prefix like kite_/)
  await refuses(t, 'kite-tracing', { tracer: {} }, 'tracer', /must be an OpenTelemetry Tracer/)
  await refuses(t, 'kite-tracing', { tracerProvider: 'global' }, 'tracerProvider', /must be an OpenTelemetry TracerProvider/)
})

t.test('good values are taken', async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  const registry = new Registry()
  await base(app)
  await app.register(kiteMetrics, { registry, prefix: 'app_', buckets: [0.5, 0.1], path: false })
  await app.register(systemInfo, { livePath: '/live', readyPath: false, maxEventLoopUtilization: 1 })
  await app.ready()
  t.ok(registry.getSingleMetric('app_calls_total'), 'the metrics went to the registry given, with the prefix')
  t.equal((await app.inject('/live')).statusCode, 200, 'systeminfo serves the path given')
  t.equal((await app.inject('/health/ready')).statusCode, 404, 'and no readiness route')
  const proxy = Fastify({ logger: false })
  t.teardown(() => proxy.close())
  await proxy.register(kiteTunnelProxy, { keyPair, publicHost: 'tunnel.example:8443', scheme: 'https', maxQueued: { bytes: 1024 } })
  await proxy.ready()
  t.equal(proxy.kiteTunnelProxy.publicBase(), 'https://tunnel.example:8443')
  const claims = { sub: 'k', seq: 1, iat: 0, nbf: 0, exp: Math.floor(Date.now() / 1000) + 60 }
  t.same(proxy.kiteTunnelProxy.verifyToken(proxy.kiteTunnelProxy.signToken(claims)), claims, 'tokens are signed with the pair given')
})

t.test('no unhandled rejection from any of it', async (t) => {
  // Rejections are reported after the microtask queue drains: let one macrotask pass.
  await new Promise((r) => setImmediate(r))
  t.same(unhandled.map(String), [])
})
