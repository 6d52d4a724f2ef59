import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics } from 'prom-client'
import { KiteMetrics, type KiteMetricsOptions } from '../../lib/observe/metrics.js'

/** Options of the kiteMetrics plugin. */
export interface KiteMetricsPluginOptions extends KiteMetricsOptions {
  /** The route answering the metrics in Prometheus text format; `false` for none (serve `registry` yourself). Default `/metrics`. */
  path?: string | false
  /** Also collect prom-client's default Node metrics (heap, GC, event loop lag…) into the registry. Default false. */
  defaultMetrics?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's kite metrics (kiteMetrics plugin): `registry`, `observer` for your own KiteClients. */
    kiteMetrics: KiteMetrics
  }
}

async function kiteMetricsPlugin(app: FastifyInstance, options: KiteMetricsPluginOptions): Promise<void> {
  const path = options.path ?? '/metrics'
  if (path !== false && (typeof path !== 'string' || !/^(\/[A-Za-z0-9._~-]+)+$/.test(path))) {
    throw new TypeError(`kiteMetrics option path must be a path like /metrics or false, got ${String(path)}`)
  }
  const metrics = new KiteMetrics(options)
  if (options.defaultMetrics === true) collectDefaultMetrics({ register: metrics.registry, prefix: metrics.prefix })
  metrics.watchConnections(app.kite)
  app.kite.addObserver(metrics)
  app.decorate('kiteMetrics', metrics)
  // Kontrol may be registered after this plugin.
  app.addHook('onReady', async () => {
    if (app.hasDecorator('kontrol')) metrics.watchKontrol(() => app.kontrol.stats())
  })
  if (path !== false) {
    app.get(path, async (_req, reply) => {
      reply.type(metrics.registry.contentType).header('cache-control', 'no-store')
      return metrics.registry.metrics()
    })
  }
}

/**
 * Prometheus metrics of the app's kite (calls, errors, durations, connections,
 * callbacks; Kontrol's counts when it runs in the app; calls made through the
 * KiteClients `app.kite.getKites` hands out) on `GET /metrics`. Register after
 * kiteServer.
 */
export const kiteMetrics = fp(kiteMetricsPlugin, { name: 'kite-metrics', fastify: '5.x', dependencies: ['kite-server'] })
export default kiteMetrics
export { KiteMetrics, DEFAULT_BUCKETS } from '../../lib/observe/metrics.js'
export type { KiteMetricsOptions, KontrolCounts, ConnectionSource } from '../../lib/observe/metrics.js'
