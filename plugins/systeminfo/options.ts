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

function path(value: string | false | undefined, fallback: string, name: string): string | false {
  const v = value ?? fallback
  if (v === false) return false
  if (typeof v !== 'string' || !/^(\/[A-Za-z0-9._~-]+)+$/.test(v)) {
    throw new TypeError(`systeminfo option ${name} must be a path like ${fallback} or false, got ${String(v)}`)
  }
  return v
}

function ms(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new TypeError(`systeminfo option ${name} must be a positive number of ms`)
  return v
}

function utilization(v: number): number {
  if (typeof v !== 'number' || !(v > 0 && v <= 1)) throw new TypeError('systeminfo option maxEventLoopUtilization must be a number in (0, 1]')
  return v
}

/** Checks the options when the plugin registers, so that mistakes fail at start. */
export function resolveSystemInfoOptions(o: SystemInfoOptions = {}): ResolvedSystemInfoOptions {
  if (o === null || typeof o !== 'object') throw new TypeError('systeminfo options must be an object')
  const systemInfoPath = path(o.systemInfoPath, '/systeminfo', 'systemInfoPath')
  const livePath = path(o.livePath, '/health/live', 'livePath')
  const readyPath = path(o.readyPath, '/health/ready', 'readyPath')
  const paths = [systemInfoPath, livePath, readyPath].filter((p) => p !== false)
  if (new Set(paths).size !== paths.length) throw new TypeError('systeminfo options systemInfoPath, livePath and readyPath must differ')
  if (o.readyWhen !== undefined && typeof o.readyWhen !== 'function') throw new TypeError('systeminfo option readyWhen must be a function')
  return {
    systemInfoPath,
    livePath,
    readyPath,
    readyWhen: o.readyWhen ?? null,
    readyCheckTimeoutMs: ms(o.readyCheckTimeoutMs, 2000, 'readyCheckTimeoutMs'),
    maxEventLoopDelayMs: ms(o.maxEventLoopDelayMs, 1000, 'maxEventLoopDelayMs'),
    maxHeapUsedBytes: o.maxHeapUsedBytes === undefined ? null : ms(o.maxHeapUsedBytes, 0, 'maxHeapUsedBytes'),
    maxRssBytes: o.maxRssBytes === undefined ? null : ms(o.maxRssBytes, 0, 'maxRssBytes'),
    maxEventLoopUtilization: o.maxEventLoopUtilization === undefined ? null : utilization(o.maxEventLoopUtilization),
    sampleIntervalMs: ms(o.sampleIntervalMs, 200, 'sampleIntervalMs'),
  }
}
