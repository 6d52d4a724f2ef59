import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { kiteServer, type KiteServerOptions } from '../plugins/kite-server/index.js'
import { kiteAuth } from '../plugins/kite-auth/index.js'
import { kontrolRegister } from '../plugins/kontrol-register/index.js'
import { systemInfo } from '../plugins/systeminfo/index.js'
import { mathMethods } from './methods.js'
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
 * - the kite methods of `mathMethods` (./methods.ts), with schemas: `square(n)`,
 *   `countdown(n, onTick)`, `whoami()`; `square` also at `POST /kite/methods/square`.
 * - `GET /square/:n`: the same square as a plain HTTP route.
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

  app.kite.handleAll(mathMethods)

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
