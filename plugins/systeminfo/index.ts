import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { collectSystemInfo, type SystemInfo } from './collect.js'
import { EventLoopMonitor, Readiness, type LifecyclePhase, type ReadinessState } from './health.js'
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
  /** Event-loop delay the liveness probe judges, in ms. */
  readonly eventLoopDelayMs: number
  /** True while the event-loop sampler's timer runs (from onReady until onClose). */
  readonly sampling: boolean
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
  const monitor = new EventLoopMonitor({ intervalMs: o.sampleIntervalMs, windowMs: o.eventLoopWindowMs, clock: o.clock })
  const collect = (): Promise<SystemInfo> => collectSystemInfo()

  // Authentication required, as in Go; errors are thrown and reach the caller as genericError.
  app.kite.handle('kite.systemInfo', collect)
  addRoutes(app, { options: o, readiness, monitor, collect })

  app.addHook('onReady', async () => {
    // With kontrol-register and no check of the user's own, ready means registered.
    if (o.readyWhen === null && app.hasDecorator('kontrolRegister') && !readiness.hasCheck) {
      readiness.setCheck(() => app.kontrolRegister.registered)
    }
    monitor.start()
    readiness.markReady()
  })
  app.addHook('preClose', async () => readiness.markDraining())
  app.addHook('onClose', async () => monitor.stop())

  app.decorate('systeminfo', {
    get state() {
      return readiness.phase
    },
    setReadyCheck: (fn: ReadyCheck | null) => readiness.setCheck(fn),
    checkReady: () => readiness.evaluate(),
    get eventLoopDelayMs() {
      return monitor.delayMs()
    },
    get sampling() {
      return monitor.running
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
