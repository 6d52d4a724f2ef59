import { randomUUID } from 'node:crypto'
import type { KeyPairRecord } from './storage/storage.js'

/** Signs a JWT with one RS256 private key (@fastify/jwt's sign). */
export type JwtSign = (claims: Record<string, unknown>, options: { key: string; algorithm: 'RS256' }) => string

export interface TokenSettings {
  /** Kontrol's username: the `iss` of everything it signs. */
  issuer: string
  /** Kontrol's URL, written into kite.keys. */
  kontrolURL: () => string
  /** Token lifetime in ms (Go: 48 h). */
  ttlMs: number
  /** Backdating of iat/nbf and extra lifetime, ms (Go: 5 min). */
  leewayMs: number
  clock: () => number
  sign: JwtSign
}

/** Issues kite.keys and tokens with the claims of spec §5.6; tokens are cached while they have ≥ 2 leeways left. */
export class TokenIssuer {
  /** Tokens signed since start (cache hits not counted), for metrics. */
  signed = 0
  private readonly cache = new Map<string, { token: string; until: number }>()

  constructor(private readonly s: TokenSettings) {}

  private sign(claims: Record<string, unknown>, pair: KeyPairRecord): string {
    return this.s.sign(claims, { key: pair.private, algorithm: 'RS256' })
  }

  /** A kite.key for `username` (never expires), naming the public key that signed it. */
  kiteKey(username: string, pair: KeyPairRecord): string {
    const now = Math.floor((this.s.clock() - this.s.leewayMs) / 1000)
    return this.sign({ iss: this.s.issuer, sub: username, iat: now, jti: randomUUID(), kontrolURL: this.s.kontrolURL(), kontrolKey: pair.public }, pair)
  }

  /** A token letting `username` call kites under `audience`. */
  token(audience: string, username: string, pair: KeyPairRecord, force = false): string {
    const key = `${audience}\u0000${username}\u0000${pair.id}`
    const now = this.s.clock()
    const hit = this.cache.get(key)
    if (!force && hit !== undefined && hit.until > now) return hit.token
    const iat = Math.floor((now - this.s.leewayMs) / 1000)
    const exp = Math.floor((now + this.s.ttlMs + this.s.leewayMs) / 1000)
    const token = this.sign({ iss: this.s.issuer, sub: username, aud: audience, iat, nbf: iat, exp, jti: randomUUID() }, pair)
    this.signed++
    if (this.cache.size > 10000) this.cache.clear()
    this.cache.set(key, { token, until: now + this.s.ttlMs - this.s.leewayMs })
    return token
  }
}
