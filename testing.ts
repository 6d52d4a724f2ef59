/**
 * `fastify-kite/testing`: what a user's own tests need (the upstream
 * testkeys/testutil): a Kontrol key pair, a Kontrol in one call, and kite.keys
 * it issued. `app.kite.inject(method, ...args)` (on every kiteServer app)
 * calls a method without a socket.
 */
import { generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { kiteServer } from './plugins/kite-server/index.js'
import { kiteAuth } from './plugins/kite-auth/index.js'
import { kontrol, type KontrolOptions } from './plugins/kontrol/index.js'
import { writeKiteKey } from './lib/kitekey.js'
import type { KontrolQuery } from './lib/protocol/kontrol.js'

/** An RSA key pair in PEM, as Kontrol signs kite.keys and tokens with. */
export interface TestKeyPair {
  publicKey: string
  privateKey: string
}

let cachedPair: TestKeyPair | null = null

/**
 * A 2048-bit RSA key pair for tests. Made once per process (RSA generation
 * takes a moment); pass `{ fresh: true }` for a new one.
 */
export function testKeyPair(options: { fresh?: boolean } = {}): TestKeyPair {
  if (cachedPair !== null && options.fresh !== true) return cachedPair
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  if (options.fresh !== true) cachedPair = pair
  return pair
}

/** What `startTestKontrol` gives. */
export interface TestKontrol {
  /** The Kontrol's kite URL (`http://127.0.0.1:<port>/kite`). */
  url: string
  /** The key pair it signs with now (by default the shared `testKeyPair()`). */
  keyPair: TestKeyPair
  /** A kite.key for `username`, signed by this Kontrol. */
  kiteKey(username: string): string
  /**
   * Writes a kite.key for `username` to `<kiteHome>/kite.key` (folder 0700,
   * file 0600) and returns its path: point `KITE_HOME` or the plugins' `kiteKey` option there.
   */
  writeKiteKey(username: string, kiteHome: string): Promise<string>
  /**
   * A token for the one registered kite matching `query`, issued to `username`
   * (as Kontrol's `getToken` gives it): what a web page's backend hands its page.
   */
  token(query: KontrolQuery, username: string): Promise<string>
  /** The Fastify app running it, for anything else (`app.kontrol`). */
  app: FastifyInstance
  /** Stops it. */
  close(): Promise<void>
}

/** Options of `startTestKontrol`: Kontrol's own, plus where to listen. */
export interface TestKontrolOptions extends KontrolOptions {
  /** Default 127.0.0.1. */
  host?: string
  /** Default 0 (a free port). */
  port?: number
  /** Kontrol's own kite username (the `iss` of what it signs). Default `testuser`. */
  username?: string
  /** Fastify's options (default: no logger). */
  fastify?: FastifyServerOptions
}

/**
 * A Kontrol on 127.0.0.1 and a free port, in memory, with the shared test
 * key pair, short heartbeats (1 s, 1 s grace) and no logs:
 * `const k = await startTestKontrol(); …; await k.close()`.
 */
export async function startTestKontrol(options: TestKontrolOptions = {}): Promise<TestKontrol> {
  const { host = '127.0.0.1', port = 0, username = 'testuser', fastify, ...kontrolOptions } = options
  // The shared test pair, unless the options name one (`keyPair: undefined` lets Kontrol make or load its own).
  const keyPair = 'keyPair' in kontrolOptions ? kontrolOptions.keyPair : testKeyPair()
  const app = Fastify({ logger: false, return503OnClosing: false, ...fastify })
  try {
    await app.register(kiteServer, { name: 'kontrol', version: '0.0.1', username, closeGraceMs: 200 })
    await app.register(kiteAuth, { kiteKey: false })
    await app.register(kontrol, { storage: 'memory', heartbeatInterval: 1, heartbeatGrace: 1, sweepInterval: 200, ...kontrolOptions, keyPair })
    await app.listen({ port, host })
  } catch (err) {
    await app.close()
    throw err
  }
  const kiteKey = (user: string): string => app.kontrol.service.issueKiteKey(user)
  return {
    url: app.kontrol.url,
    keyPair: { publicKey: app.kontrol.keys.current.public, privateKey: app.kontrol.keys.current.private },
    kiteKey,
    async writeKiteKey(user, kiteHome) {
      const path = join(kiteHome, 'kite.key')
      await writeKiteKey(kiteKey(user), path)
      return path
    },
    token: (query, user) => app.kontrol.service.token(query, user, false),
    app,
    close: () => app.close(),
  }
}
