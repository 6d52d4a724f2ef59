import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { kiteServer } from '../plugins/kite-server/index.js'
import { kiteAuth } from '../plugins/kite-auth/index.js'
import { kontrol } from '../plugins/kontrol/index.js'
import { kiteMetrics } from '../plugins/kite-metrics/index.js'

/** An embedded Kontrol: SQLite in $KITE_HOME unless `storage` says otherwise (e.g. a postgres:// URL). */
export async function buildKontrol(o: { username: string; storage?: string; fastify?: FastifyServerOptions }): Promise<FastifyInstance> {
  const app = Fastify({ logger: true, return503OnClosing: false, ...o.fastify })
  await app.register(kiteServer, { name: 'kontrol', version: '0.0.1', username: o.username })
  await app.register(kiteAuth, { kiteKey: false })
  // Kontrol's counts (kites registered, registrations, getKites, tokens, missed heartbeats) on /metrics.
  await app.register(kiteMetrics)
  await app.register(kontrol, o.storage === undefined ? {} : { storage: o.storage })
  return app
}
