import type { AuthContext, AuthResult } from '../../lib/methods/dispatch.js'
import type { Clock } from '../../lib/methods/throttle.js'
import type { KiteIdentity } from '../../lib/protocol/kite.js'
import { decodeJwt } from '../../lib/kitekey.js'
import { checkAudience } from './audience.js'
import { MAX_PEM_LENGTH, type TrustedKeys } from './trusted-keys.js'
import { VerificationCache } from './verification-cache.js'

/** Verifies a JWT's signature and time claims with one key, RS256 only (@fastify/jwt's verify). */
export type JwtVerify = (token: string, options: { key: string; algorithms: ['RS256']; clockTimestamp: number; clockTolerance: number }) => Record<string, unknown>

export interface AuthenticatorSettings {
  trusted: TrustedKeys
  /** This kite, for the audience check. */
  identity: KiteIdentity
  allowRootAudience: boolean
  leewayMs: number
  /** How long a verified kite.key is remembered (kite.keys do not expire). */
  kiteKeyTTLMs: number
  /** How long a failed verification is remembered. */
  failureTTLMs: number
  cacheSize: number
  /** Remember the credentials a WebSocket connection passed, so that its next calls may refer to them (AuthResult.remember). */
  rememberCredentials: boolean
  clock: Clock
  verify: JwtVerify
}

/**
 * The transports on which a connection is one peer's own socket, so that a
 * reference to credentials it passed cannot come from anybody else (an XHR
 * session is a URL anybody who learns it can post to).
 */
const REMEMBERING_TRANSPORTS = new Set(['websocket', 'sockjs-websocket'])

/** The largest credential accepted; a Kontrol token is about 700 bytes, a kite.key about 1.5 KiB. */
export const MAX_CREDENTIAL_LENGTH = 16 * 1024

/** The reason a token that expired (or no longer verifies) is refused with: clients renew on it (spec §5.4). */
const TOKEN_EXPIRED = 'token is expired'
const SIGNATURE_INVALID = 'signature is invalid'

/** Why a credential was refused; dispatch prefixes the authentication type (`token: …`). */
class AuthFailure extends Error {
  /** `KITE_ERR_AUTH_TOKEN_EXPIRED` for an expired token, so that the answer says so by code. */
  readonly code: string

  constructor(reason: string) {
    super(reason)
    this.code = reason === TOKEN_EXPIRED ? 'KITE_ERR_AUTH_TOKEN_EXPIRED' : ''
  }
}

function fail(reason: string): never {
  throw new AuthFailure(reason)
}

function jwtFailure(err: unknown): string {
  const code = (err as { code?: string }).code
  if (code === 'FAST_JWT_EXPIRED') return TOKEN_EXPIRED
  if (code === 'FAST_JWT_INACTIVE') return 'token is not valid yet'
  if (code === 'FAST_JWT_INVALID_SIGNATURE') return SIGNATURE_INVALID
  if (code === 'FAST_JWT_MISSING_SIGNATURE') return 'signature is missing'
  if (code === 'FAST_JWT_INVALID_ALGORITHM') return 'unexpected signing method'
  if (code === 'FAST_JWT_MALFORMED' || code === 'FAST_JWT_INVALID_PAYLOAD') return 'malformed token'
  if (code === 'FAST_JWT_INVALID_CLAIM_TYPE' || code === 'FAST_JWT_INVALID_CLAIM_VALUE') return 'malformed claims'
  return 'token cannot be verified'
}

/**
 * The `kiteKey` and `token` authenticators. Both answer synchronously from a
 * cache keyed by the credential, so a connection pays one RSA verification
 * per distinct token. Error messages say what failed and never contain the
 * credential itself.
 */
export class KiteAuthenticators {
  private readonly cache: VerificationCache
  /** Signature verifications done (cache misses). */
  verifications = 0

  constructor(private readonly s: AuthenticatorSettings) {
    this.cache = new VerificationCache(s.cacheSize, s.clock)
  }

  /** `kiteKey`: a kite.key signed by a trusted Kontrol key; `sub` is the username. */
  readonly kiteKey = (ctx: AuthContext): AuthResult => this.cached('k', ctx, (key) => this.verifyKiteKey(key))

  /** `token`: a Kontrol token for this kite, from a trusted issuer; `sub` is the username. */
  readonly token = (ctx: AuthContext): AuthResult => this.cached('t', ctx, (key) => this.verifyToken(key))

  /** The last credential each connection passed, so that its next calls skip even the cache lookup. */
  private readonly lastPassed = new WeakMap<object, { kind: string; key: string; result: AuthResult; until: number; version: number }>()

  private cached(kind: string, ctx: AuthContext, verify: (key: string) => { username: string; until: number }): AuthResult {
    const conn = ctx.connection
    const auth = ctx.authentication
    const key = auth.key
    if (auth.remembered === true) {
      // A reference: the dispatcher put in the key this connection's peer passed with `remember`
      // (KiteConnection.rememberedAuth). It is checked below as if sent (expiry, trusted keys),
      // so it is worth exactly what the key is.
      const r = conn === null ? null : conn.rememberedAuth
      if (r === null || r.type !== auth.type || r.key !== key) fail('no credentials remembered on this connection')
    } else {
      if (typeof key !== 'string' || key.length === 0) fail('no key given')
      if (key.length > MAX_CREDENTIAL_LENGTH) fail('key is too large')
    }
    const last = conn === null ? undefined : this.lastPassed.get(conn)
    let result: AuthResult
    if (last !== undefined && last.key === key && last.kind === kind && last.version === this.s.trusted.version && last.until > this.s.clock()) result = last.result
    else {
      const { username, until } = this.lookup(kind, key, verify)
      result = { username }
      if (conn !== null) this.lastPassed.set(conn, { kind, key, result, until, version: this.s.trusted.version })
    }
    // Asked to remember (remembered credentials), on a connection that is one peer's own socket:
    // the answer says so, and the peer may refer to the key from now on.
    if (auth.remember === true && auth.remembered !== true && this.s.rememberCredentials && conn !== null && REMEMBERING_TRANSPORTS.has(conn.transport)) {
      conn.rememberedAuth = { type: auth.type, key }
      return { username: result.username, remember: true }
    }
    return result
  }

  /** The cached outcome of verifying `key`, verifying it on a miss; throws the (cached) failure. */
  private lookup(kind: string, key: string, verify: (key: string) => { username: string; until: number }): { username: string; until: number } {
    const cacheKey = kind + key
    const hit = this.cache.get(cacheKey, this.s.trusted.version)
    if (hit !== undefined) {
      if (hit.error !== null) fail(hit.error)
      return { username: hit.username!, until: hit.until }
    }
    try {
      const verified = verify(key)
      this.cache.set(cacheKey, { username: verified.username, error: null, until: verified.until })
      return verified
    } catch (err) {
      const message = err instanceof AuthFailure ? err.message : 'token cannot be verified'
      this.cache.set(cacheKey, { username: null, error: message, until: this.s.clock() + this.s.failureTTLMs })
      fail(message)
    }
  }

  private decode(key: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
    let decoded
    try {
      decoded = decodeJwt(key)
    } catch {
      fail('malformed token')
    }
    if (decoded.header.alg !== 'RS256') fail(`unexpected signing method: ${String(decoded.header.alg).slice(0, 16)}`)
    return decoded
  }

  private verifyWith(key: string, pem: string): Record<string, unknown> {
    this.verifications++
    return this.s.verify(key, { key: pem, algorithms: ['RS256'], clockTimestamp: this.s.clock(), clockTolerance: this.s.leewayMs })
  }

  private checkIssuedAt(claims: Record<string, unknown>): void {
    if (claims.iat !== undefined && (typeof claims.iat !== 'number' || claims.iat * 1000 > this.s.clock() + this.s.leewayMs)) fail('token used before issued')
  }

  private username(claims: Record<string, unknown>): string {
    if (typeof claims.sub !== 'string' || claims.sub === '') fail('token has no username')
    return claims.sub
  }

  private verifyKiteKey(key: string): { username: string; until: number } {
    const { claims } = this.decode(key)
    const kontrolKey = claims.kontrolKey
    if (typeof kontrolKey !== 'string' || kontrolKey === '') fail('no kontrol key found')
    if (kontrolKey.length > MAX_PEM_LENGTH) fail('kontrol key is not trusted')
    // The key named inside the token is only a hint: it must already be trusted.
    const trusted = this.s.trusted.lookup(kontrolKey)
    if (trusted === null) fail('kontrol key is not trusted')
    if (trusted.issuers !== null && !trusted.issuers.has(String(claims.iss))) fail(`issuer is not trusted: ${String(claims.iss).slice(0, 64)}`)
    let verified: Record<string, unknown>
    try {
      verified = this.verifyWith(key, trusted.pem)
    } catch (err) {
      fail(jwtFailure(err))
    }
    this.checkIssuedAt(verified)
    const username = this.username(verified)
    const until = this.s.clock() + this.s.kiteKeyTTLMs
    return { username, until: typeof verified.exp === 'number' ? Math.min(until, verified.exp * 1000 + this.s.leewayMs) : until }
  }

  private verifyToken(key: string): { username: string; until: number } {
    const { claims } = this.decode(key)
    const issuer = claims.iss
    if (typeof issuer !== 'string' || issuer === '') fail('token has no issuer')
    const candidates = this.s.trusted.forIssuer(issuer)
    if (candidates.length === 0) fail(`issuer is not trusted: ${issuer.slice(0, 64)}`)
    let verified: Record<string, unknown> | null = null
    let problem = ''
    for (const pem of candidates) {
      try {
        verified = this.verifyWith(key, pem)
        break
      } catch (err) {
        problem = jwtFailure(err)
        if (problem !== SIGNATURE_INVALID) break
      }
    }
    // A bad signature reads "token is expired", so that clients fetch a new
    // token after Kontrol's keys rotated (spec §5.4).
    if (verified === null) fail(problem === SIGNATURE_INVALID ? TOKEN_EXPIRED : problem)
    if (typeof verified.exp !== 'number') fail('token has no expiry')
    this.checkIssuedAt(verified)
    const audienceProblem = checkAudience(verified.aud, this.s.identity, this.s.allowRootAudience)
    if (audienceProblem !== null) fail(audienceProblem)
    return { username: this.username(verified), until: verified.exp * 1000 + this.s.leewayMs }
  }
}
