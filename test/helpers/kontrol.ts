import Fastify, { type FastifyInstance } from 'fastify'
import { kiteServer, type KiteServerOptions } from '../../plugins/kite-server/index.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import type { KontrolOptions } from '../../plugins/kontrol/index.js'
import { startTestKontrol } from '../../testing.js'
import { kontrolRegister, type KontrolRegisterOptions } from '../../plugins/kontrol-register/index.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

const quiet = process.env.KITE_TEST_LOG === '1' ? { level: 'debug' } : false

/** A Kontrol (memory storage, 1 s heartbeats, 1 s grace) on 127.0.0.1. */
export async function startKontrol(t: Teardown, options: KontrolOptions = {}, port = 0): Promise<{ app: FastifyInstance; url: string; kiteKey: (user: string) => string }> {
  // fastify-kite/testing's Kontrol, with a key pair of its own (or from its storage) unless one is given.
  const k = await startTestKontrol({ username: 'kontrol-owner', port, fastify: { logger: quiet }, keyPair: undefined, ...options })
  t.teardown(() => k.close())
  return { app: k.app, url: k.url, kiteKey: k.kiteKey }
}

/** A kite registered with a Kontrol: `secret` needs a token, `square` does not. */
export async function startRegisteredKite(
  t: Teardown,
  kontrolURL: string | string[],
  kiteKey: string,
  kite: Partial<KiteServerOptions> = {},
  register: Partial<KontrolRegisterOptions> = {},
): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: quiet })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0', environment: 'test', closeGraceMs: 200, ...kite })
  await app.register(kiteAuth, { kiteKey })
  await app.register(kontrolRegister, { kontrolURL, kiteKey, backoff: { initialMs: 50, maxMs: 300 }, ...register })
  app.kite.handle('square', (req) => (req.args[0] as number) ** 2).disableAuthentication()
  app.kite.handle('secret', (req) => `hello ${req.username}`)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  await app.kontrolRegister.ready
  return { app, url: `${base}/kite` }
}

/** Polls `check` every 50 ms until it returns true or `ms` pass; resolves with the elapsed time. */
export async function eventually(check: () => Promise<boolean> | boolean, ms: number): Promise<number> {
  const started = Date.now()
  for (;;) {
    if (await check()) return Date.now() - started
    if (Date.now() - started > ms) throw new Error(`condition not met within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
