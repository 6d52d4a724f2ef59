import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Tracer, TracerProvider } from '@opentelemetry/api'
import { checkOptions } from '../../lib/options.js'
import { kiteTracer, type KiteTracingOptions } from '../../lib/observe/tracing.js'

/** Checks every option when the plugin registers, with an error naming the option. */
function resolveTracingOptions(o: KiteTracingOptions): KiteTracingOptions {
  const c = checkOptions('kite-tracing', o)
  return {
    tracer: c.instance<Tracer>('tracer', 'an OpenTelemetry Tracer (with startSpan)', ['startSpan']),
    tracerProvider: c.instance<TracerProvider>('tracerProvider', 'an OpenTelemetry TracerProvider (with getTracer)', ['getTracer']),
  }
}

async function kiteTracingPlugin(app: FastifyInstance, options: KiteTracingOptions): Promise<void> {
  app.kite.addObserver(kiteTracer(resolveTracingOptions(options)))
}

/**
 * OpenTelemetry spans for the app's kite: a SERVER span per call to its
 * methods, a CLIENT span per call it makes (`conn.tell`, the KiteClients
 * `app.kite.getKites` hands out), with W3C trace context carried in the call
 * envelope. Needs only `@opentelemetry/api`; the app registers its own SDK
 * (a tracer provider and a context manager). Register after kiteServer.
 */
export const kiteTracing = fp(kiteTracingPlugin, { name: 'kite-tracing', fastify: '5.x', dependencies: ['kite-server'] })
export default kiteTracing
export { kiteTracer, parseTraceCarrier, formatTraceCarrier } from '../../lib/observe/tracing.js'
export type { KiteTracingOptions } from '../../lib/observe/tracing.js'
