import type { FastifyInstance } from 'fastify'
import { checkOptions } from '../../lib/options.js'
import type { KiteServerOptions } from '../kite-server/index.js'
import type { ReverseProxyOptions } from './index.js'

export interface ResolvedReverseProxyOptions {
  publicHost: string
  publicPort: number | undefined
  scheme: 'http' | 'https'
  /** kite-server options of the `proxy` kite, when this plugin registers kite-server itself. */
  kite: KiteServerOptions
  requestTimeoutMs: number
}

/** Whether the Fastify server was created with `https`. */
export function serverScheme(app: FastifyInstance): 'http' | 'https' {
  return app.initialConfig.https !== undefined && app.initialConfig.https !== false ? 'https' : 'http'
}

/** Checks every option when the plugin registers, with an error naming the option. */
export function resolveReverseProxyOptions(app: FastifyInstance, o: ReverseProxyOptions = {}): ResolvedReverseProxyOptions {
  const c = checkOptions('reverse-proxy', o)
  const publicPort = c.raw('publicPort') === undefined ? undefined : c.number('publicPort', 0, { integer: true, max: 65535 })
  return {
    publicHost: c.string('publicHost', '127.0.0.1'),
    publicPort,
    scheme: c.oneOf('scheme', ['http', 'https'] as const, serverScheme(app)),
    kite: { name: 'proxy', version: c.version('version', '0.0.1'), region: c.kiteField('region', undefined), environment: c.kiteField('environment', 'development'), ...(c.object('kite') as Partial<KiteServerOptions>) },
    requestTimeoutMs: c.number('requestTimeoutMs', 60000, { min: 1 }),
  }
}
