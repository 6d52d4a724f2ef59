import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, type Registry } from 'prom-client'
import { checkOptions } from '../../lib/options.js'
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

/** Checks every option when the plugin registers, with an error naming the option. */
function resolveMetricsOptions(o: KiteMetricsPluginOptions): { path: string | false; defaultMetrics: boolean; metrics: KiteMetricsOptions } {
  const c = checkOptions('kite-metrics', o)
  const registry = c.instance<Registry>('registry', 'a prom-client Registry', ['registerMetric', 'getSingleMetric', 'metrics'])
  const prefix = c.string('prefix', 'kite_')
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) c.fail('prefix', `must be a metric name prefix like kite_ (letters, digits, _ and :), got "${prefix}"`)
  const buckets = c.raw('buckets')
  if (buckets !== undefined && (!Array.isArray(buckets) || buckets.length === 0 || buckets.some((b) => typeof b !== 'number' || !Number.isFinite(b) || b <= 0))) {
    c.fail('buckets', 'must be a non-empty array of positive numbers of seconds')
  }
  return {
    path: c.path('path', '/metrics'),
    defaultMetrics: c.boolean('defaultMetrics', false),
    metrics: { registry, prefix, buckets: buckets as number[] | undefined },
  }
}

async function kiteMetricsPlugin(app: FastifyInstance, options: KiteMetricsPluginOptions): Promise<void> {
  const { path, defaultMetrics, metrics: metricsOptions } = resolveMetricsOptions(options)
  const metrics = new KiteMetrics(metricsOptions)
  if (defaultMetrics) collectDefaultMetrics({ register: metrics.registry, prefix: metrics.prefix })
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
