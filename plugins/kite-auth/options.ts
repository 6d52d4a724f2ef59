import { decodeKiteKey } from '../../lib/kitekey.js'
import { checkOptions, type OptionChecker } from '../../lib/options.js'
import type { Authenticator } from '../../lib/methods/dispatch.js'
import type { Clock } from '../../lib/methods/throttle.js'
import { keyFingerprint, type TrustedKontrolKey } from './trusted-keys.js'

/** Options of the kite-auth plugin. */
export interface KiteAuthOptions {
  /** Kontrol public keys (PEM) to trust, optionally each with the issuer it signs for. */
  trustedKontrolKeys?: Array<string | TrustedKontrolKey>
  /**
   * This kite's kite.key (a JWT): its `kontrolKey` is trusted for its `iss`.
   * Default: read from `$KITE_HOME/kite.key` when there is one; `false` to not.
   */
  kiteKey?: string | false
  /** Audience policy for `token` authentication. */
  audience?: {
    /**
     * Accept the root audience `/`. Go Kontrol issues it for id-only queries
     * (and every Go TokenRenewer renewal); it passes every audience check, so
     * it is refused by default. Default false.
     */
    allowRoot?: boolean
  }
  /** Seconds of clock skew allowed on `exp`, `nbf` and `iat`. Default 0 (as Go). */
  leeway?: number
  /** Seconds a verified kite.key is remembered (kite.keys never expire). Default 300 (Go `VerifyTTL`). */
  kiteKeyTTL?: number
  /** Seconds a failed verification is remembered. Default 30. */
  failureTTL?: number
  /** Most verification results remembered. Default 10000. */
  cacheSize?: number
  /**
   * Remembered credentials (a fastify-kite extension): once a call's kite.key or
   * token passed on a WebSocket connection, the answer says `authRemembered` and
   * the caller (KiteClient) may send `{ type, remembered: true }` instead of the
   * key on that connection from then on; it is checked as the key itself would be
   * (expiry, trusted keys). Go kites and kite.js ignore the field and keep sending
   * keys. Default true.
   */
  rememberCredentials?: boolean
  /** More authenticators by `authentication.type` (e.g. `sessionID`). */
  authenticators?: Record<string, Authenticator>
  /** Clock in ms; injectable for tests. */
  clock?: Clock
}

export interface ResolvedAuthOptions {
  trustedKontrolKeys: Array<string | TrustedKontrolKey>
  kiteKey: string | false | undefined
  allowRootAudience: boolean
  leewayMs: number
  kiteKeyTTLMs: number
  failureTTLMs: number
  cacheSize: number
  rememberCredentials: boolean
  authenticators: Record<string, Authenticator>
  clock: Clock
}

/** Checks the options when the plugin registers. */
export function resolveAuthOptions(o: KiteAuthOptions = {}): ResolvedAuthOptions {
  const c: OptionChecker = checkOptions('kite-auth', o)
  const keys = c.raw('trustedKontrolKeys') ?? []
  if (!Array.isArray(keys)) c.fail('trustedKontrolKeys', 'must be an array of PEM public keys or { publicKey, issuer }')
  ;(keys as unknown[]).forEach((k, i) => {
    const pem = typeof k === 'string' ? k : k !== null && typeof k === 'object' ? (k as TrustedKontrolKey).publicKey : undefined
    const issuer = k !== null && typeof k === 'object' ? (k as TrustedKontrolKey).issuer : undefined
    if (issuer !== undefined && typeof issuer !== 'string') c.fail(`trustedKontrolKeys[${i}].issuer`, 'must be a string')
    try {
      keyFingerprint(pem as string)
    } catch (err) {
      c.fail(`trustedKontrolKeys[${i}]`, `must be an RSA public key (PEM) or { publicKey, issuer }: ${(err as Error).message}`)
    }
  })
  const kiteKey = c.raw('kiteKey')
  if (kiteKey !== undefined && kiteKey !== false) {
    if (typeof kiteKey !== 'string' || kiteKey === '') c.fail('kiteKey', 'must be a kite.key (a string) or false')
    try {
      decodeKiteKey(kiteKey)
    } catch (err) {
      c.fail('kiteKey', `is not a kite.key: ${(err as Error).message}`)
    }
  }
  const audience = c.object('audience')
  if (audience.allowRoot !== undefined && typeof audience.allowRoot !== 'boolean') c.fail('audience.allowRoot', 'must be true or false')
  return {
    trustedKontrolKeys: keys as Array<string | TrustedKontrolKey>,
    kiteKey: kiteKey as string | false | undefined,
    allowRootAudience: audience.allowRoot === true,
    leewayMs: c.number('leeway', 0) * 1000,
    kiteKeyTTLMs: c.number('kiteKeyTTL', 300) * 1000,
    failureTTLMs: c.number('failureTTL', 30) * 1000,
    cacheSize: c.number('cacheSize', 10000, { integer: true, min: 1 }),
    rememberCredentials: c.boolean('rememberCredentials', true),
    authenticators: c.functions<Authenticator>('authenticators'),
    clock: c.fn<Clock>('clock') ?? Date.now,
  }
}
