import { checkOptions } from '../../lib/options.js'

/** A readiness check: anything but `true` (or a promise of `true`) means "not ready". */
export type ReadyCheck = () => boolean | Promise<boolean>

/** Options of the systeminfo plugin. */
export interface SystemInfoOptions {
  /** HTTP path answering the `kite.systemInfo` object (no authentication: it shows `homeDir`); `false` for no route. Default `/systeminfo`. */
  systemInfoPath?: string | false
  /** HTTP path of the liveness probe; `false` for no route. Default `/health/live`. */
  livePath?: string | false
  /** HTTP path of the readiness probe; `false` for no route. Default `/health/ready`. */
  readyPath?: string | false
  /** Extra readiness condition (e.g. "registered with Kontrol"); `app.systeminfo.setReadyCheck()` replaces it. Default none. */
  readyWhen?: ReadyCheck
  /** How long the readiness check may take before it counts as not ready, in ms. Default 2000. */
  readyCheckTimeoutMs?: number
  /** Event-loop delay (mean over a sample interval, as @fastify/under-pressure measures it) above which the liveness probe answers 503, in ms. Default 1000. */
  maxEventLoopDelayMs?: number
  /** Heap used above which the liveness probe answers 503, in bytes. Default: no limit. */
  maxHeapUsedBytes?: number
  /** Resident set size above which the liveness probe answers 503, in bytes. Default: no limit. */
  maxRssBytes?: number
  /** Event-loop utilisation (0 to 1) above which the liveness probe answers 503. Default: no limit. */
  maxEventLoopUtilization?: number
  /** How often @fastify/under-pressure samples, in ms. Default 200. */
  sampleIntervalMs?: number
}

export interface ResolvedSystemInfoOptions {
  systemInfoPath: string | false
  livePath: string | false
  readyPath: string | false
  readyWhen: ReadyCheck | null
  readyCheckTimeoutMs: number
  maxEventLoopDelayMs: number
  maxHeapUsedBytes: number | null
  maxRssBytes: number | null
  maxEventLoopUtilization: number | null
  sampleIntervalMs: number
}

/** Checks every option when the plugin registers, so that mistakes fail at start with an error naming the option. */
export function resolveSystemInfoOptions(o: SystemInfoOptions = {}): ResolvedSystemInfoOptions {
  const c = checkOptions('systeminfo', o)
  const systemInfoPath = c.path('systemInfoPath', '/systeminfo')
  const livePath = c.path('livePath', '/health/live')
  const readyPath = c.path('readyPath', '/health/ready')
  const seen = new Map<string, string>()
  for (const [name, p] of [['systemInfoPath', systemInfoPath], ['livePath', livePath], ['readyPath', readyPath]] as const) {
    if (p === false) continue
    const other = seen.get(p)
    if (other !== undefined) c.fail(name, `must differ from ${other}, both are ${p}`)
    seen.set(p, name)
  }
  const positive = { min: Number.MIN_VALUE }
  const limit = (name: string): number | null => (c.raw(name) === undefined ? null : c.number(name, 0, positive))
  const utilization = c.raw('maxEventLoopUtilization') === undefined ? null : c.number('maxEventLoopUtilization', 1, { min: Number.MIN_VALUE, max: 1 })
  return {
    systemInfoPath,
    livePath,
    readyPath,
    readyWhen: c.fn<ReadyCheck>('readyWhen') ?? null,
    readyCheckTimeoutMs: c.number('readyCheckTimeoutMs', 2000, positive),
    maxEventLoopDelayMs: c.number('maxEventLoopDelayMs', 1000, positive),
    maxHeapUsedBytes: limit('maxHeapUsedBytes'),
    maxRssBytes: limit('maxRssBytes'),
    maxEventLoopUtilization: utilization,
    sampleIntervalMs: c.number('sampleIntervalMs', 200, positive),
  }
}
