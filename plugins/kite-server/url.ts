import type { FastifyInstance } from 'fastify'
import { Server as HttpsServer } from 'node:https'
import { networkInterfaces } from 'node:os'

/**
 * The URL this kite registers (Go's `RegisterURL`): its listen address
 * (`local`) or this machine's first non-internal IPv4 address (`public`),
 * https:// when the server is TLS, with the kite's prefix.
 */
export function registerURL(app: FastifyInstance, which: 'local' | 'public'): string {
  const address = app.server.address()
  if (address === null || typeof address !== 'object') return ''
  const scheme = app.server instanceof HttpsServer || 'setSecureContext' in app.server ? 'https' : 'http'
  let host = address.address === '0.0.0.0' || address.address === '::' ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address
  if (which === 'public') {
    const external = Object.values(networkInterfaces()).flat().find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)
    if (external !== undefined) host = external.address
  }
  return `${scheme}://${host}:${address.port}${app.kite.prefix}`
}

