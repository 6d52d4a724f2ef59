import type { Authenticator } from '../../lib/methods/dispatch.js'
import type { Clock } from '../../lib/methods/throttle.js'
import type { TrustedKontrolKey } from './trusted-keys.js'

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
  authenticators: Record<string, Authenticator>
  clock: Clock
}

function seconds(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TypeError(`kite-auth option ${name} must be a non-negative number of seconds`)
  return v * 1000
}

/** Checks the options when the plugin registers. */
export function resolveAuthOptions(o: KiteAuthOptions = {}): ResolvedAuthOptions {
  const keys = o.trustedKontrolKeys ?? []
  if (!Array.isArray(keys)) throw new TypeError('kite-auth option trustedKontrolKeys must be an array')
  if (o.kiteKey !== undefined && o.kiteKey !== false && typeof o.kiteKey !== 'string') throw new TypeError('kite-auth option kiteKey must be a string or false')
  const authenticators = o.authenticators ?? {}
  for (const [type, fn] of Object.entries(authenticators)) if (typeof fn !== 'function') throw new TypeError(`authenticator ${type} must be a function`)
  const cacheSize = o.cacheSize ?? 10000
  if (!Number.isInteger(cacheSize) || cacheSize < 1) throw new TypeError('kite-auth option cacheSize must be a positive integer')
  return {
    trustedKontrolKeys: keys,
    kiteKey: o.kiteKey,
    allowRootAudience: o.audience?.allowRoot === true,
    leewayMs: seconds(o.leeway, 0, 'leeway'),
    kiteKeyTTLMs: seconds(o.kiteKeyTTL, 300, 'kiteKeyTTL'),
    failureTTLMs: seconds(o.failureTTL, 30, 'failureTTL'),
    cacheSize,
    authenticators,
    clock: o.clock ?? Date.now,
  }
}
