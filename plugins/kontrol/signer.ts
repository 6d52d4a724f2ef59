import { createPrivateKey, sign as rsaSign, type KeyObject } from 'node:crypto'
import { kiteError } from '../../lib/errors.js'
import type { KeyPairRecord } from './storage/storage.js'

/** `{"alg":"RS256","typ":"JWT"}`, as jwt-go, kite.js and @fastify/jwt write it. */
const HEADER = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT' })).toString('base64url')

/**
 * Signs RS256 JWTs (RSASSA-PKCS1-v1_5 with SHA-256) for Kontrol. With
 * `threads` > 0 the RSA work runs on libuv's thread pool (Node's callback
 * `crypto.sign`), at most `threads` signings at once, so the event loop
 * stays free for pings and heartbeats while another core signs; further
 * signings wait their turn here rather than crowd the pool that file and
 * DNS work share. With 0 it signs on the event loop.
 */
export class JwtSigner {
  /** Parsed private keys by pair id: parsing a PEM costs more than one signature. */
  private readonly keyObjects = new Map<string, KeyObject>()
  private active = 0
  private readonly waiting: Array<() => void> = []

  constructor(readonly threads: number) {}

  /** A signed JWT carrying `claims`, signed with `pair`'s private key. */
  async sign(claims: Record<string, unknown>, pair: KeyPairRecord): Promise<string> {
    const input = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
    const key = this.keyOf(pair)
    if (this.threads === 0) return `${input}.${this.signNow(input, key)}`
    await this.acquire()
    try {
      const signature = await new Promise<Buffer>((resolve, reject) => {
        rsaSign('sha256', Buffer.from(input), key, (err, sig) => (err === null ? resolve(sig) : reject(kiteError('KITE_ERR_KONTROL_SIGN', err.message))))
      })
      return `${input}.${signature.toString('base64url')}`
    } finally {
      this.release()
    }
  }

  /** Takes one of the `threads` slots, waiting for one when all are taken. */
  private async acquire(): Promise<void> {
    if (this.active < this.threads) {
      this.active++
      return
    }
    // release() hands its slot straight to the first waiter, so no newcomer can slip in between.
    await new Promise<void>((resolve) => this.waiting.push(resolve))
  }

  private release(): void {
    const next = this.waiting.shift()
    if (next !== undefined) next()
    else this.active--
  }

  /** Signs on the calling thread (tools and tests that need a kite.key at once). */
  signSync(claims: Record<string, unknown>, pair: KeyPairRecord): string {
    const input = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
    return `${input}.${this.signNow(input, this.keyOf(pair))}`
  }

  private signNow(input: string, key: KeyObject): string {
    try {
      return rsaSign('sha256', Buffer.from(input), key).toString('base64url')
    } catch (err) {
      throw kiteError('KITE_ERR_KONTROL_SIGN', (err as Error).message)
    }
  }

  private keyOf(pair: KeyPairRecord): KeyObject {
    let key = this.keyObjects.get(pair.id)
    if (key === undefined) {
      try {
        key = createPrivateKey(pair.private)
      } catch (err) {
        throw kiteError('KITE_ERR_KONTROL_SIGN', `key pair ${pair.id}: ${(err as Error).message}`)
      }
      this.keyObjects.set(pair.id, key)
    }
    return key
  }
}
