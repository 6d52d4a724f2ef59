import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import { collectSystemInfo, type SystemInfo } from './collect.js'
import { Readiness, type LifecyclePhase, type ReadinessState } from './health.js'
import { resolveSystemInfoOptions, type ReadyCheck, type SystemInfoOptions } from './options.js'
import { addRoutes } from './routes.js'

/** `app.systeminfo`: system information and the health state behind the probes. */
export interface SystemInfoDecorator {
  /** Lifecycle phase: `starting` until onReady, `ready`, then `draining` once closing begins. */
  readonly state: LifecyclePhase
  /** Sets (or with `null` removes) the readiness check; replaces the `readyWhen` option. */
  setReadyCheck(fn: ReadyCheck | null): void
  /** What the readiness probe would answer now (phase, then the check). */
  checkReady(): Promise<ReadinessState>
  /** Event-loop delay the liveness probe judges (@fastify/under-pressure's last sample), in ms. */
  readonly eventLoopDelayMs: number
  /** True when @fastify/under-pressure finds a limit passed: the liveness probe answers 503. */
  readonly underPressure: boolean
  /** The `kite.systemInfo` object. */
  collect(): Promise<SystemInfo>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** System information and health state (systeminfo plugin). */
    systeminfo: SystemInfoDecorator
  }
}

async function systemInfoPlugin(app: FastifyInstance, options: SystemInfoOptions): Promise<void> {
  const o = resolveSystemInfoOptions(options)
  const readiness = new Readiness({
    check: o.readyWhen,
    timeoutMs: o.readyCheckTimeoutMs,
    closing: () => app.kite.closing,
    onCheckError: (err) => app.log.warn({ err }, 'systeminfo: readiness check failed'),
  })
  // Liveness on @fastify/under-pressure, unless the app registered it itself (then its limits count).
  if (!app.hasDecorator('isUnderPressure')) {
    await app.register(underPressure, {
      maxEventLoopDelay: o.maxEventLoopDelayMs,
      maxHeapUsedBytes: o.maxHeapUsedBytes ?? 0,
      maxRssBytes: o.maxRssBytes ?? 0,
      maxEventLoopUtilization: o.maxEventLoopUtilization ?? 0,
      sampleInterval: o.sampleIntervalMs,
      // Only the liveness probe reports pressure; other routes and kite calls keep being served.
      pressureHandler: () => {},
    })
  }
  const collect = (): Promise<SystemInfo> => collectSystemInfo()

  // Authentication required, as in Go; errors are thrown and reach the caller as genericError.
  app.kite.handle('kite.systemInfo', collect)
  addRoutes(app, { options: o, readiness, collect })

  app.addHook('onReady', async () => {
    // With kontrol-register and no check of the user's own, ready means registered.
    if (o.readyWhen === null && app.hasDecorator('kontrolRegister') && !readiness.hasCheck) {
      readiness.setCheck(() => app.kontrolRegister.registered)
    }
    readiness.markReady()
  })
  app.addHook('preClose', async () => readiness.markDraining())

  app.decorate('systeminfo', {
    get state() {
      return readiness.phase
    },
    setReadyCheck: (fn: ReadyCheck | null) => readiness.setCheck(fn),
    checkReady: () => readiness.evaluate(),
    get eventLoopDelayMs() {
      return app.memoryUsage().eventLoopDelay
    },
    get underPressure() {
      return app.isUnderPressure()
    },
    collect,
  } satisfies SystemInfoDecorator)
}

/**
 * `kite.systemInfo` (Go's fields and units), an HTTP system-information route,
 * and liveness/readiness probes. Register after kiteServer.
 */
export const systemInfo = fp(systemInfoPlugin, { name: 'systeminfo', fastify: '5.x', dependencies: ['kite-server'] })
export default systemInfo
export { collectSystemInfo, goos } from './collect.js'
export type { SystemInfo } from './collect.js'
export type { LifecyclePhase, ReadinessState } from './health.js'
export type { ReadyCheck, SystemInfoOptions } from './options.js'
