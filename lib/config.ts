import { kiteError } from './errors.js'
import { decodeKiteKey, findKiteKey, kiteHome, kiteKeyPath } from './kitekey.js'
import type { TransportName } from './client/transports/transport.js'

/** Log levels of `KITE_LOG_LEVEL`, as pino names them. */
export type KiteLogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug'

/**
 * A kite's configuration (spec §9.2). `loadConfig` fills it from options,
 * then the `KITE_*` environment variables, then the kite.key, then defaults.
 */
export interface KiteConfig {
  /** Default `unknown`; the kite.key's `sub` when there is one. `KITE_USERNAME`. */
  username: string
  /** Default `unknown`. `KITE_ENVIRONMENT`. */
  environment: string
  /** Default `unknown`. `KITE_REGION`. */
  region: string
  /** Kontrol's URL: `KITE_KONTROL_URL`, or the kite.key's `kontrolURL`. */
  kontrolURL: string
  /** Kontrol's public key (PEM): the kite.key's `kontrolKey`. */
  kontrolKey: string
  /** Kontrol's username: the kite.key's `iss`. */
  kontrolUser: string
  /** The raw kite.key JWT, or empty. */
  kiteKey: string
  /** The kite.key's `jti`. */
  keyId: string
  /** Client transport: `KITE_TRANSPORT` = `WebSocket` → `sockjs`, `XHRPolling` → `xhr-polling`, `auto`. */
  transport: TransportName
  /** Listen address. Default `0.0.0.0`. `KITE_IP`. */
  ip: string
  /** Listen port; 0 picks a free one. `KITE_PORT`. */
  port: number
  /** Timeout of calls to Kontrol and of the XHR first byte, ms. Default 15000. `KITE_TIMEOUT` (a Go duration such as `30s`). */
  timeoutMs: number
  /** Handshake timeout, ms: kite-server's `handshakeTimeoutMs`. Default 10000. `KITE_HANDSHAKE_TIMEOUT`. */
  handshakeTimeoutMs: number
  /** How long a kite.key verification is remembered, ms. Default 300000. `KITE_VERIFY_TTL`. */
  verifyTTLMs: number
  /** Default `info`. `KITE_LOG_LEVEL` (`DEBUG|INFO|WARNING|ERROR|FATAL`, any case). */
  logLevel: KiteLogLevel
  /** Where kite.key lives. `KITE_HOME`, default `~/.kite`. */
  home: string
}

export const defaultConfig: Readonly<KiteConfig> = Object.freeze({
  username: 'unknown',
  environment: 'unknown',
  region: 'unknown',
  kontrolURL: '',
  kontrolKey: '',
  kontrolUser: '',
  kiteKey: '',
  keyId: '',
  transport: 'sockjs',
  ip: '0.0.0.0',
  port: 0,
  timeoutMs: 15000,
  handshakeTimeoutMs: 10000,
  verifyTTLMs: 5 * 60 * 1000,
  logLevel: 'info',
  home: '',
})

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 }

/** Parses a Go duration (`300ms`, `1.5h`, `2h45m`) into milliseconds. */
export function parseGoDuration(text: string): number {
  const s = text.trim()
  if (s === '0') return 0
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy
  let total = 0
  let matched = 0
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!
    matched = re.lastIndex
  }
  if (matched === 0 || matched !== s.length) throw kiteError('KITE_ERR_DURATION_INVALID', text)
  return total
}

const TRANSPORTS: Record<string, TransportName> = { WebSocket: 'sockjs', XHRPolling: 'xhr-polling', auto: 'auto' }
const LOG_LEVELS: Record<string, KiteLogLevel> = { DEBUG: 'debug', INFO: 'info', WARNING: 'warn', ERROR: 'error', FATAL: 'fatal' }

function invalid(variable: string, message: string): Error {
  return kiteError('KITE_ERR_CONFIG_INVALID', `${variable}: ${message}`)
}

/**
 * The configuration the `KITE_*` variables of `env` give (only what is set).
 * Pure; unlike the Go kite, a value that does not parse is an error, not ignored.
 */
export function fromEnv(env: NodeJS.ProcessEnv): Partial<KiteConfig> {
  const c: Partial<KiteConfig> = {}
  const text = (name: string): string | undefined => {
    const v = env[name]
    return v === undefined || v === '' ? undefined : v
  }
  const strings = [['KITE_USERNAME', 'username'], ['KITE_ENVIRONMENT', 'environment'], ['KITE_REGION', 'region'], ['KITE_KONTROL_URL', 'kontrolURL'], ['KITE_IP', 'ip']] as const
  for (const [variable, field] of strings) {
    const v = text(variable)
    if (v !== undefined) c[field] = v
  }
  const home = text('KITE_HOME')
  if (home !== undefined) c.home = home
  const transport = text('KITE_TRANSPORT')
  if (transport !== undefined) {
    const t = TRANSPORTS[transport]
    if (t === undefined) throw invalid('KITE_TRANSPORT', `must be WebSocket, XHRPolling or auto, got "${transport}"`)
    c.transport = t
  }
  const port = text('KITE_PORT')
  if (port !== undefined) {
    const n = Number(port)
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw invalid('KITE_PORT', `must be a port number, got "${port}"`)
    c.port = n
  }
  const durations = [['KITE_TIMEOUT', 'timeoutMs'], ['KITE_HANDSHAKE_TIMEOUT', 'handshakeTimeoutMs'], ['KITE_VERIFY_TTL', 'verifyTTLMs']] as const
  for (const [variable, field] of durations) {
    const v = text(variable)
    if (v === undefined) continue
    try {
      c[field] = parseGoDuration(v)
    } catch (err) {
      throw invalid(variable, (err as Error).message)
    }
  }
  const level = text('KITE_LOG_LEVEL')
  if (level !== undefined) {
    const l = LOG_LEVELS[level.toUpperCase()]
    if (l === undefined) throw invalid('KITE_LOG_LEVEL', `must be DEBUG, INFO, WARNING, ERROR or FATAL, got "${level}"`)
    c.logLevel = l
  }
  return c
}

/** The configuration a kite.key gives: `sub`, `iss`, `jti`, `kontrolURL`, `kontrolKey` and the key itself. */
export function fromKiteKey(key: string): Partial<KiteConfig> {
  const claims = decodeKiteKey(key)
  const c: Partial<KiteConfig> = { username: claims.sub, kontrolUser: claims.iss, kiteKey: key.trim() }
  if (claims.jti !== undefined) c.keyId = claims.jti
  if (claims.kontrolURL !== undefined) c.kontrolURL = claims.kontrolURL
  if (claims.kontrolKey !== undefined) c.kontrolKey = claims.kontrolKey.trim()
  return c
}

/** Options of `loadConfig`. */
export interface LoadConfigOptions {
  /** Values that win over everything else. */
  options?: Partial<KiteConfig>
  /** Default: process.env. */
  env?: NodeJS.ProcessEnv
  /** Read kite.key (from `home` or `KITE_HOME`). Default true; a missing kite.key is not an error. */
  readKiteKey?: boolean
}

/** options > `KITE_*` environment > kite.key > defaults. */
export async function loadConfig(o: LoadConfigOptions = {}): Promise<KiteConfig> {
  const env = o.env ?? process.env
  const fromEnvironment = fromEnv(env)
  const home = o.options?.home ?? fromEnvironment.home ?? kiteHome(env)
  let fromKey: Partial<KiteConfig> = {}
  if (o.readKiteKey !== false) {
    const found = await findKiteKey(kiteKeyPath({ KITE_HOME: home }))
    if (found !== null) fromKey = fromKiteKey(found.key)
  }
  return { ...defaultConfig, ...fromKey, ...fromEnvironment, ...definedOnly(o.options ?? {}), home }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** What a plugin starts from: the configuration, what the environment set, and why kite.key could not be read (if so). */
export interface PluginConfig {
  config: KiteConfig
  /** Only what `KITE_*` variables set. */
  env: Partial<KiteConfig>
  /** kite.key exists but could not be read or decoded; the config then has no kite.key values. */
  kiteKeyError: Error | null
}

/**
 * The one configuration path of the plugins: `loadConfig` (options >
 * `KITE_*` > kite.key > defaults; options are applied by each plugin). A bad
 * `KITE_*` value throws `KITE_ERR_CONFIG_INVALID`; a kite.key that cannot be
 * read is reported in `kiteKeyError` so that plugins that do not need it still start.
 */
export async function pluginConfig(env: NodeJS.ProcessEnv = process.env): Promise<PluginConfig> {
  const fromEnvironment = fromEnv(env)
  try {
    return { config: await loadConfig({ env }), env: fromEnvironment, kiteKeyError: null }
  } catch (err) {
    if (!(err instanceof Error) || !/^KITE_ERR_KITEKEY_/.test((err as { code?: string }).code ?? '')) throw err
    return { config: await loadConfig({ env, readKiteKey: false }), env: fromEnvironment, kiteKeyError: err }
  }
}
