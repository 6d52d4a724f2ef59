import { createPublicKey } from 'node:crypto'
import { kiteError } from '../../lib/errors.js'

/** The largest PEM accepted, in a token claim or in options. */
export const MAX_PEM_LENGTH = 8192

/** A Kontrol public key this kite trusts, and optionally the issuer (Kontrol username) it signs for. */
export interface TrustedKontrolKey {
  /** PEM public key (SPKI or PKCS#1). */
  publicKey: string
  /** When set, tokens verified by this key must carry this `iss`. */
  issuer?: string
}

/** The identity of a public key whatever its PEM formatting: its SPKI DER, base64. Throws KITE_ERR_KONTROL_KEY_INVALID. */
export function keyFingerprint(pem: string): string {
  if (typeof pem !== 'string' || pem.length === 0 || pem.length > MAX_PEM_LENGTH) throw kiteError('KITE_ERR_KONTROL_KEY_INVALID', `not a PEM public key of at most ${MAX_PEM_LENGTH} characters`)
  let key
  try {
    key = createPublicKey(pem)
  } catch {
    throw kiteError('KITE_ERR_KONTROL_KEY_INVALID', 'not a PEM public key')
  }
  if (key.asymmetricKeyType !== 'rsa') throw kiteError('KITE_ERR_KONTROL_KEY_INVALID', 'not an RSA key')
  return key.export({ type: 'spki', format: 'der' }).toString('base64')
}

interface Entry {
  pem: string
  issuers: Set<string> | null
}

/** The set of trusted Kontrol keys, compared by key material, never by text. */
export class TrustedKeys {
  private readonly byFingerprint = new Map<string, Entry>()
  /** Bumped on every change, so caches of verification results know to drop. */
  version = 0

  /** Trusts `publicKey` (for `issuer` only, when given). Throws on a key that is not an RSA public key. */
  add(k: TrustedKontrolKey | string): void {
    const { publicKey, issuer } = typeof k === 'string' ? { publicKey: k, issuer: undefined } : k
    const fingerprint = keyFingerprint(publicKey)
    const existing = this.byFingerprint.get(fingerprint)
    if (existing === undefined) {
      this.byFingerprint.set(fingerprint, { pem: publicKey.trim(), issuers: issuer === undefined ? null : new Set([issuer]) })
    } else if (issuer === undefined) {
      existing.issuers = null
    } else {
      existing.issuers?.add(issuer)
    }
    this.version++
  }

  get size(): number {
    return this.byFingerprint.size
  }

  /** The trusted PEM equal to `pem` (which is untrusted input), or null. */
  lookup(pem: string): { pem: string; issuers: Set<string> | null } | null {
    let fingerprint: string
    try {
      fingerprint = keyFingerprint(pem)
    } catch {
      return null
    }
    return this.byFingerprint.get(fingerprint) ?? null
  }

  /** Trusted PEMs allowed to sign for `issuer`. */
  forIssuer(issuer: string): string[] {
    const out: string[] = []
    for (const e of this.byFingerprint.values()) if (e.issuers === null || e.issuers.has(issuer)) out.push(e.pem)
    return out
  }

  /** True when some key is trusted for `issuer`. */
  trustsIssuer(issuer: string): boolean {
    return this.forIssuer(issuer).length > 0
  }
}
