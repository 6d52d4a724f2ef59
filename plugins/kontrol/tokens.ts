import { randomUUID } from 'node:crypto'
import { BoundedCache } from '../../lib/cache.js'
import type { JwtSigner } from './signer.js'
import type { KeyPairRecord } from './storage/storage.js'

export interface TokenSettings {
  /** Kontrol's username: the `iss` of everything it signs. */
  issuer: string
  /** Kontrol's URL, written into kite.keys. */
  kontrolURL: () => string
  /** Token lifetime in ms (Go: 48 h). */
  ttlMs: number
  /** Backdating of iat/nbf and extra lifetime, ms (Go: 5 min). */
  leewayMs: number
  /** Tokens kept for reuse at most (least recently used go first). */
  cacheSize: number
  clock: () => number
  signer: JwtSigner
}

/**
 * Issues kite.keys and tokens with the claims of spec §5.6. Tokens are cached
 * per (audience, requester, key pair) while they have ≥ 2 leeways left, and
 * concurrent requests for the same token share one signing.
 */
export class TokenIssuer {
  /** Tokens signed since start (cache hits and shared signings not counted), for metrics. */
  signed = 0
  private readonly cache: BoundedCache<string, string>
  /** Signings under way, by cache key: live work, not a cache (each entry goes when it settles). */
  private readonly inFlight = new Map<string, Promise<string>>()

  constructor(private readonly s: TokenSettings) {
    this.cache = new BoundedCache({ maxEntries: s.cacheSize, clock: s.clock })
  }

  private kiteKeyClaims(username: string, pair: KeyPairRecord): Record<string, unknown> {
    const now = Math.floor((this.s.clock() - this.s.leewayMs) / 1000)
    return { iss: this.s.issuer, sub: username, iat: now, jti: randomUUID(), kontrolURL: this.s.kontrolURL(), kontrolKey: pair.public }
  }

  /** A kite.key for `username` (never expires), naming the public key that signed it; signed off the event loop. */
  kiteKey(username: string, pair: KeyPairRecord): Promise<string> {
    return this.s.signer.sign(this.kiteKeyClaims(username, pair), pair)
  }

  /** The same kite.key, signed on the calling thread (tools and tests). */
  kiteKeySync(username: string, pair: KeyPairRecord): string {
    return this.s.signer.signSync(this.kiteKeyClaims(username, pair), pair)
  }

  /** A token letting `username` call kites under `audience`; `force` skips the cache (not a signing under way). */
  token(audience: string, username: string, pair: KeyPairRecord, force = false): Promise<string> {
    const key = `${audience}\u0000${username}\u0000${pair.id}`
    if (!force) {
      const hit = this.cache.get(key)
      if (hit !== undefined) return Promise.resolve(hit)
    }
    const pending = this.inFlight.get(key)
    if (pending !== undefined) return pending
    const signing = this.signToken(key, audience, username, pair)
    this.inFlight.set(key, signing)
    return signing
  }

  private async signToken(key: string, audience: string, username: string, pair: KeyPairRecord): Promise<string> {
    try {
      const now = this.s.clock()
      const iat = Math.floor((now - this.s.leewayMs) / 1000)
      const exp = Math.floor((now + this.s.ttlMs + this.s.leewayMs) / 1000)
      const token = await this.s.signer.sign({ iss: this.s.issuer, sub: username, aud: audience, iat, nbf: iat, exp, jti: randomUUID() }, pair)
      this.signed++
      this.cache.set(key, token, now + this.s.ttlMs - this.s.leewayMs)
      return token
    } finally {
      this.inFlight.delete(key)
    }
  }

  /** Tokens cached now (expired ones not yet dropped included). */
  get cached(): number {
    return this.cache.size
  }
}
