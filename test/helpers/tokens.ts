import { createHmac, createSign, generateKeyPairSync, randomUUID } from 'node:crypto'

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** Signs any header and claims the way a forger could: RS or PS with a private key, HS with any secret, or none. */
export function signJwt(header: Record<string, unknown>, claims: Record<string, unknown>, key: string | null): string {
  const input = `${b64(header)}.${b64(claims)}`
  const alg = String(header.alg)
  if (alg === 'none' || key === null) return `${input}.`
  if (alg.startsWith('HS')) return `${input}.${createHmac(`sha${alg.slice(2)}`, key).update(input).digest('base64url')}`
  const sign = createSign(`RSA-SHA${alg.slice(2)}`)
  sign.update(input)
  const padding = alg.startsWith('PS') ? { padding: 6, saltLength: 32 } : {}
  return `${input}.${sign.sign({ key, ...padding }).toString('base64url')}`
}

/** A Kontrol key pair with helpers that issue kite.keys and tokens as Go Kontrol does (spec §5.6). */
export interface TestKontrol {
  publicKey: string
  privateKey: string
  issuer: string
  kiteKey(sub: string, extra?: Record<string, unknown>): string
  token(sub: string, aud: string, extra?: Record<string, unknown>): string
}

export function makeKontrol(issuer = 'kontrol-owner', now = Date.now()): TestKontrol {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  const sec = Math.floor(now / 1000)
  return {
    publicKey,
    privateKey,
    issuer,
    kiteKey: (sub, extra = {}) =>
      signJwt({ alg: 'RS256', typ: 'JWT' }, { iss: issuer, sub, iat: sec - 300, jti: randomUUID(), kontrolURL: 'http://127.0.0.1:4000/kite', kontrolKey: publicKey.trim(), ...extra }, privateKey),
    token: (sub, aud, extra = {}) =>
      signJwt({ alg: 'RS256', typ: 'JWT' }, { iss: issuer, sub, aud, iat: sec - 300, nbf: sec - 300, exp: sec + 48 * 3600 + 300, jti: randomUUID(), ...extra }, privateKey),
  }
}
