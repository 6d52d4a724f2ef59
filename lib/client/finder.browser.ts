import type { KiteClient } from './client.js'
import type { KitePool, KitePoolOptions } from './pool.js'
import type { KontrolQuery } from '../protocol/kontrol.js'

/** The browser build's stand-in: pools through Kontrol are for Node processes (`fastify-kite/client`). */
export function poolThroughKontrol(_client: KiteClient, _query: KontrolQuery, _options: KitePoolOptions): KitePool {
  throw new TypeError('pools are not available in the browser client; use fastify-kite/client in Node')
}
