import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { kiteServer, type KiteServerOptions } from '../plugins/kite-server/index.js'
import { kiteAuth } from '../plugins/kite-auth/index.js'
import { kontrolRegister } from '../plugins/kontrol-register/index.js'
import { systemInfo } from '../plugins/systeminfo/index.js'
import { kiteMetrics } from '../plugins/kite-metrics/index.js'

/** Options of the example app. */
export interface MathAppOptions {
  /** Fastify server options (logger…). */
  fastify?: FastifyServerOptions
  /** Register with this Kontrol, using this kite.key. Without it the kite runs on its own. */
  kontrol?: { url: string; kiteKey: string }
  /** More kite-server options (limits, timeouts). */
  kite?: Partial<KiteServerOptions>
}

/**
 * The `math` kite: an HTTP route and kite methods side by side on one Fastify
 * server, with systeminfo and health routes, Prometheus metrics on /metrics, registered with Kontrol when one
 * is given.
 * - `square(n)`: n², no credentials needed.
 * - `countdown(n, onTick)`: calls `onTick(i)` for i = n … 1, then answers "done".
 * - `whoami()`: the caller's authenticated username (needs a kite.key or a token).
 * - `GET /square/:n`: the same square over plain HTTP.
 */
export async function buildMathApp(options: MathAppOptions = {}): Promise<FastifyInstance> {
  // Headers must arrive within 15 s (Node checks every 5 s); kite-server drops sockets that send no request within 10 s.
  const app = Fastify({ logger: true, return503OnClosing: false, http: { headersTimeout: 15_000, connectionsCheckingInterval: 5_000 }, ...options.fastify })
  await app.register(kiteServer, { name: 'math', version: '1.0.0', environment: process.env.KITE_ENVIRONMENT ?? 'development', ...options.kite })
  await app.register(kiteAuth, { kiteKey: options.kontrol?.kiteKey ?? false })
  await app.register(systemInfo)
  // Prometheus metrics on GET /metrics: calls, errors and durations per method, connections.
  await app.register(kiteMetrics)
  if (options.kontrol !== undefined) {
    // systeminfo's /health/ready answers 503 until this has registered.
    await app.register(kontrolRegister, { kontrolURL: options.kontrol.url, kiteKey: options.kontrol.kiteKey })
  }

  app.kite
    .handle('square', (req) => {
      const [n] = req.args
      if (typeof n !== 'number' || !Number.isFinite(n)) throw new TypeError('square needs one number')
      return n * n
    })
    .disableAuthentication()

  app.kite
    .handle('countdown', async (req) => {
      const [n, onTick] = req.args
      if (!Number.isInteger(n) || (n as number) < 0 || (n as number) > 1000) throw new TypeError('countdown needs an integer from 0 to 1000')
      if (typeof onTick !== 'function') throw new TypeError('countdown needs a callback')
      for (let i = n as number; i > 0; i--) {
        onTick(i)
        await new Promise((r) => setTimeout(r, 10))
      }
      return 'done'
    })
    .disableAuthentication()

  app.kite.handle('whoami', (req) => req.username)

  app.get<{ Params: { n: string } }>(
    '/square/:n',
    { schema: { params: { type: 'object', properties: { n: { type: 'number' } } }, response: { 200: { type: 'object', properties: { result: { type: 'number' } } } } } },
    async (request) => {
      const n = Number(request.params.n)
      return { result: n * n }
    },
  )
  return app
}
