import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
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

/** The first of `candidates` (relative to this file, from source or from dist/) that exists. */
function findDir(candidates: string[]): string | null {
  for (const c of candidates) {
    const dir = fileURLToPath(new URL(c, import.meta.url))
    if (existsSync(dir)) return dir
  }
  return null
}

/**
 * The `math` kite: an HTTP route and kite methods side by side on one Fastify
 * server, with systeminfo and health routes, Prometheus metrics on /metrics, registered with Kontrol when one
 * is given.
 * - the kite methods of `mathMethods` (./methods.ts), with schemas: `square(n)`,
 *   `countdown(n, onTick)`, `whoami()`; `square` also at `POST /kite/methods/square`.
 * - `greetPage()`: calls `page.name` on the caller (the page answers it) and greets that.
 * - `GET /square/:n`: the same square as a plain HTTP route.
 * - `GET /`: a page that calls these methods from the browser (`fastify-kite/browser`, served as `/kite.js`).
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

  // The server calls a method on the caller (the page's `page.name`) and answers with what it said.
  app.kite
    .handle('greetPage', async (req) => {
      const name = await req.connection.tell('page.name', [], { timeout: 5000 })
      return `hello, ${String(name)}`
    })
    .disableAuthentication()

  // The browser page and the browser build of the client (`npm run build` makes dist/browser/kite.js).
  const publicDir = findDir(['./public/', '../../example-app/public/'])
  const browserDir = findDir(['../dist/browser/', '../browser/'])
  if (publicDir !== null && browserDir !== null) {
    await app.register(fastifyStatic, { root: [publicDir, browserDir], wildcard: false })
  }

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
