import { createPrivateKey, createPublicKey, createSign, createVerify, generateKeyPairSync } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { checkOptions } from '../../lib/options.js'
import type { KiteServerOptions } from '../kite-server/index.js'
import { serverScheme } from '../reverse-proxy/options.js'
import type { TunnelProxyOptions } from './index.js'

export interface ResolvedTunnelProxyOptions {
  publicHost: string | undefined
  scheme: 'http' | 'https'
  /** kite-server options of the `tunnelproxy` kite, when this plugin registers kite-server itself. */
  kite: KiteServerOptions
  keyPair: { publicKey: string; privateKey: string }
  tokenTTL: number
  tunnelTimeoutMs: number
  maxQueued: { messages: number; bytes: number }
}

/** A key pair that signs RS256 and whose public half verifies what the private half signed. */
function usableKeyPair(v: Record<string, unknown>): string | null {
  const { publicKey, privateKey } = v
  if (typeof publicKey !== 'string' || typeof privateKey !== 'string') return 'must be { publicKey, privateKey } (PEM strings)'
  try {
    if (createPrivateKey(privateKey).asymmetricKeyType !== 'rsa' || createPublicKey(publicKey).asymmetricKeyType !== 'rsa') return 'must be an RSA key pair'
    const signature = createSign('RSA-SHA256').update('tunnel').sign(privateKey)
    if (!createVerify('RSA-SHA256').update('tunnel').verify(publicKey, signature)) return 'must be a matching pair: publicKey does not verify what privateKey signs'
  } catch (err) {
    return `must be an RSA key pair (PEM): ${(err as Error).message}`
  }
  return null
}

/** Checks every option when the plugin registers, with an error naming the option. */
export function resolveTunnelProxyOptions(app: FastifyInstance, o: TunnelProxyOptions = {}): ResolvedTunnelProxyOptions {
  const c = checkOptions('tunnel-proxy', o)
  const publicHost = c.string('publicHost', undefined)
  if (publicHost !== undefined && /[/?#@\s]/.test(publicHost)) c.fail('publicHost', `must be host[:port], got "${publicHost}"`)
  let keyPair: { publicKey: string; privateKey: string }
  if (c.raw('keyPair') === undefined) {
    keyPair = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  } else {
    const v = c.object('keyPair')
    const problem = usableKeyPair(v)
    if (problem !== null) c.fail('keyPair', problem)
    keyPair = v as { publicKey: string; privateKey: string }
  }
  const queued = c.object('maxQueued')
  return {
    publicHost,
    scheme: c.oneOf('scheme', ['http', 'https'] as const, serverScheme(app)),
    kite: { name: 'tunnelproxy', version: c.version('version', '0.0.2'), region: c.kiteField('region', undefined), environment: c.kiteField('environment', undefined), ...(c.object('kite') as Partial<KiteServerOptions>) },
    keyPair,
    tokenTTL: c.number('tokenTTL', 60, { min: 1 }),
    tunnelTimeoutMs: c.number('tunnelTimeoutMs', 60000, { min: 1 }),
    maxQueued: {
      messages: c.numberValue('maxQueued.messages', queued.messages, 1000, { integer: true, min: 1 }),
      bytes: c.numberValue('maxQueued.bytes', queued.bytes, 4 * 1024 * 1024, { integer: true, min: 1 }),
    },
  }
}
