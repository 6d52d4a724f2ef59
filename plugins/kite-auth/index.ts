import { kiteError } from '../../lib/errors.js'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { decodeKiteKey } from '../../lib/kitekey.js'
import { pluginConfig } from '../../lib/config.js'
import type { AuthContext, AuthResult, Authenticator } from '../../lib/methods/dispatch.js'
import { privateJwt } from './private-jwt.js'
import { KiteAuthenticators, type JwtVerify } from './authenticators.js'
import { resolveAuthOptions, type KiteAuthOptions } from './options.js'
import { TrustedKeys, type TrustedKontrolKey } from './trusted-keys.js'

/** `app.kiteAuth`: the kite's trusted Kontrol keys and authenticators. */
export interface KiteAuthDecorator {
  /** Trusts one more Kontrol public key (for `issuer` only, when given). */
  addTrustedKey(key: string | TrustedKontrolKey): void
  /** Registers an authenticator for an `authentication.type`. */
  addAuthenticator(type: string, fn: Authenticator): void
  /**
   * Checks credentials as a kite call would (e.g. Kontrol's HTTP `/register`):
   * resolves with the authenticated username or rejects with the reason.
   */
  authenticate(ctx: AuthContext): Promise<AuthResult>
  /** Number of trusted Kontrol keys. */
  readonly trustedKeyCount: number
  /** Signature verifications done so far (each distinct credential is verified once, then cached). */
  readonly verifications: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Trusted Kontrol keys and authenticators (kite-auth). */
    kiteAuth: KiteAuthDecorator
  }
}

const JWT_NAMESPACE = 'kiteAuth'

async function kiteAuthPlugin(app: FastifyInstance, options: KiteAuthOptions): Promise<void> {
  const o = resolveAuthOptions(options)
  // kiteKeyTTL and the own kite.key: options > KITE_VERIFY_TTL / KITE_HOME > defaults (lib/config).
  const { config, kiteKeyError } = await pluginConfig()
  if (options?.kiteKeyTTL === undefined) o.kiteKeyTTLMs = config.verifyTTLMs
  const trusted = new TrustedKeys()
  for (const key of o.trustedKontrolKeys) trusted.add(key)

  if (o.kiteKey === undefined && kiteKeyError !== null) throw kiteKeyError
  const ownKey = o.kiteKey === false ? null : o.kiteKey !== undefined ? o.kiteKey : config.kiteKey !== '' ? config.kiteKey : null
  if (ownKey !== null) {
    const claims = decodeKiteKey(ownKey)
    if (claims.kontrolKey !== undefined) trusted.add({ publicKey: claims.kontrolKey, issuer: claims.iss })
  }
  app.addHook('onReady', async () => {
    if (trusted.size === 0) app.log.warn('kite-auth: no trusted Kontrol key; kiteKey and token authentication will fail')
  })

  // @fastify/jwt (fast-jwt) does the signature and time checks; the key is
  // always given per call, from the trusted set, with the algorithm pinned.
  const jwt = (await privateJwt(app, JWT_NAMESPACE, {
    secret: { public: async () => Promise.reject(kiteError('KITE_ERR_AUTH_SETUP', 'the key is passed on every verify')) },
    verify: { algorithms: ['RS256'] },
  })) as unknown as { verify: JwtVerify }
  const authenticators = new KiteAuthenticators({
    trusted,
    identity: app.kite.identity,
    allowRootAudience: o.allowRootAudience,
    leewayMs: o.leewayMs,
    kiteKeyTTLMs: o.kiteKeyTTLMs,
    failureTTLMs: o.failureTTLMs,
    cacheSize: o.cacheSize,
    rememberCredentials: o.rememberCredentials,
    clock: o.clock,
    verify: (token, verifyOptions) => jwt.verify(token, verifyOptions),
  })
  // kite-auth's own authenticators (and those added through app.kiteAuth): authenticate() uses these
  // first, so that a plugin replacing one in the method table (e.g. Kontrol) can still delegate here.
  const own = new Map<string, Authenticator>([['kiteKey', authenticators.kiteKey], ['token', authenticators.token], ...Object.entries(o.authenticators)])
  for (const [type, fn] of own) app.kite.addAuthenticator(type, fn)

  app.decorate('kiteAuth', {
    addTrustedKey: (key: string | TrustedKontrolKey) => trusted.add(key),
    addAuthenticator: (type: string, fn: Authenticator) => {
      app.kite.addAuthenticator(type, fn)
      own.set(type, fn)
    },
    authenticate: async (ctx: AuthContext) => {
      // Then whatever the kite knows now, also added after register with app.kite.addAuthenticator.
      const fn = own.get(ctx.authentication.type) ?? app.kite.methods.authenticators.get(ctx.authentication.type)
      if (fn === undefined) throw kiteError('KITE_ERR_AUTH_UNKNOWN_TYPE', ctx.authentication.type)
      // Only a call's own credentials are remembered for its connection (remembered credentials):
      // what a handler checks here neither asks to be remembered nor counts as a reference.
      const { type, key } = ctx.authentication
      return fn({ ...ctx, authentication: { type, key } })
    },
    get trustedKeyCount() {
      return trusted.size
    },
    get verifications() {
      return authenticators.verifications
    },
  })
}

/**
 * Authentication for kite methods: `kiteKey` (kite.key identities) and
 * `token` (Kontrol tokens) verified against trusted Kontrol keys, plus custom
 * authenticators. Register after kiteServer.
 */
export const kiteAuth = fp(kiteAuthPlugin, { name: 'kite-auth', fastify: '5.x', dependencies: ['kite-server'] })
export default kiteAuth
export type { KiteAuthOptions } from './options.js'
export type { TrustedKontrolKey } from './trusted-keys.js'
