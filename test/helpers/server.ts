import Fastify, { type FastifyInstance } from 'fastify'
import { kiteServer, type KiteServerOptions } from '../../plugins/kite-server/index.js'
import { KiteClient, type KiteClientOptions } from '../../lib/client/client.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A kite `math` on 127.0.0.1:0 with `square` and `count` (auth disabled); closed on teardown. */
export async function startKite(
  t: Teardown,
  options: Partial<KiteServerOptions> = {},
  setup: (app: FastifyInstance) => void | Promise<void> = () => {},
): Promise<{ app: FastifyInstance; url: string; base: string }> {
  const app = Fastify({ logger: process.env.KITE_TEST_LOG === '1' ? { level: 'debug' } : false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0', ...options })
  app.kite.handle('square', (req) => {
    const [n] = req.args
    if (typeof n !== 'number') throw new TypeError('square needs a number')
    return n * n
  }).disableAuthentication()
  app.kite.handle('count', async (req) => {
    const [n, cb] = req.args as [number, (i: number) => void]
    for (let i = 1; i <= n; i++) cb(i)
    return 'done'
  }).disableAuthentication()
  await setup(app)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url: `${base}/kite`, base }
}

/** A connected KiteClient, closed on teardown. */
export async function connectClient(t: Teardown, url: string, options: KiteClientOptions = {}): Promise<KiteClient> {
  const client = new KiteClient(url, options)
  t.teardown(() => client.close())
  await client.connect()
  return client
}

/** Resolves on the next `event` of `emitter`. */
export function once<T = unknown>(emitter: { once(event: string, fn: (...args: never[]) => void): unknown }, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, ((value: T) => resolve(value)) as never))
}

export const TRANSPORTS = ['sockjs', 'websocket', 'xhr-polling'] as const
