import { resolveLimits, type DnodeLimits } from '../../lib/dnode/limits.js'
import type { Authenticator } from '../../lib/methods/dispatch.js'
import type { MethodHandling } from '../../lib/methods/method.js'
import type { Clock } from '../../lib/methods/throttle.js'
import { resolveBackpressure, type BackpressureOptions } from '../../lib/connection/backpressure.js'
import { checkOptions, KiteOptionError, type OptionChecker } from '../../lib/options.js'
import { MAX_LOCAL_CALLBACKS } from '../../lib/connection/connection.js'
import { localKite, type KiteIdentity } from '../../lib/protocol/kite.js'

/** Options of the kite-server plugin. */
export interface KiteServerOptions {
  /** The kite's name, e.g. `math`. */
  name: string
  /** The kite's version, three dot-separated parts, e.g. `1.0.0`. */
  version: string
  /** Default `unknown` (G). */
  username?: string
  /** Default `unknown` (G). */
  environment?: string
  /** Default `unknown` (G). */
  region?: string
  /** Default: the machine's hostname. */
  hostname?: string
  /** Default: a new UUID v4 per start. */
  id?: string
  /** Where the kite is served: SockJS under it, raw WebSocket on it and on `<prefix>/websocket`. Default `/kite`. */
  prefix?: string
  /** Limits on incoming messages. */
  limits?: Partial<DnodeLimits>
  /** Most calls handled at once per connection. Default 1000. */
  maxConcurrentCalls?: number
  /** Which result a handler chain answers with. Default `method`. */
  methodHandling?: MethodHandling
  /** Register `kite.print`, `kite.prompt` and `kite.getPass`, which reach this process's terminal. Default false. */
  terminalMethods?: boolean
  /** Seconds between SockJS `h` frames and WebSocket pings. Default 10 (G). */
  heartbeatSeconds?: number
  /** Seconds an XHR session lives with no poll attached. Default 10 (G). */
  disconnectDelaySeconds?: number
  /** On `app.close()`, how long running calls may take before they are answered with an error, in ms. Default 5000. */
  closeGraceMs?: number
  /** Default timeout of calls this kite makes to connected peers, in ms (0 = none). Default 15000. */
  callTimeoutMs?: number
  /** Authenticators by `authentication.type` (kite-auth adds `kiteKey` and `token`). */
  authenticators?: Record<string, Authenticator>
  /** Clock for throttles; injectable for tests. */
  clock?: Clock
  /** Unsent bytes of one connection above which reading from that peer pauses until it drains. Default 4 MiB. */
  maxBufferedBytes?: number
  /** How long a connection's unsent bytes may stay above `maxBufferedBytes` before it is closed (1008), in ms. Default 10000. */
  backpressureGraceMs?: number
  /** A TCP connection whose first HTTP request (or WebSocket upgrade) has not arrived within this many ms is dropped. Default 10000; 0 never. */
  handshakeTimeoutMs?: number
  /** A connection that never authenticated and has made no successful call for this many ms is closed (1008). Default 300000; 0 never. */
  idleTimeoutMs?: number
  /** Failed authentications one connection may have within `authFailureWindowMs` before it is closed (1008). Default 10; 0 never. */
  maxAuthFailures?: number
  /** The window of `maxAuthFailures`, in ms. Default 60000. */
  authFailureWindowMs?: number
  /** Most functions this kite may have handed one peer (callbacks the peer can still call). Default 100000. */
  maxCallbacksHeld?: number
  /** Warnings caused by what peers send: at most one warn line per peer address per this many ms (the rest at debug, counted). Default 10000. */
  warnIntervalMs?: number
  /**
   * The HTTP mirror: `true` serves every method handled after registration at
   * `POST <prefix>/methods/<name>` too; `false` (default) only methods
   * handled with `{ http: true }`.
   */
  http?: boolean
  /**
   * The OpenAPI `security` of mirrored methods that need credentials, naming
   * security schemes you declare in @fastify/swagger's options, e.g.
   * `[{ kiteToken: [] }, { kiteKey: [] }]`. Default: none.
   */
  httpSecurity?: Array<Record<string, string[]>>
  /** `kite.describe` lists the methods and their schemas: `true` (default, needs credentials), `'public'` (no credentials), `false` (not registered). */
  describe?: boolean | 'public'
  /** Check results against `result` schemas. Default: on unless NODE_ENV is `production`. */
  checkResults?: boolean
}

export interface ResolvedServerOptions {
  identity: KiteIdentity
  prefix: string
  limits: Readonly<DnodeLimits>
  maxConcurrentCalls: number
  methodHandling: MethodHandling
  terminalMethods: boolean
  heartbeatMs: number
  disconnectDelayMs: number
  closeGraceMs: number
  callTimeoutMs: number
  authenticators: Record<string, Authenticator>
  clock: Clock
  backpressure: BackpressureOptions
  handshakeTimeoutMs: number
  idleTimeoutMs: number
  maxAuthFailures: number
  authFailureWindowMs: number
  maxCallbacksHeld: number
  warnIntervalMs: number
  http: boolean
  httpSecurity: Array<Record<string, string[]>> | null
  describe: boolean | 'public'
  checkResults: boolean
}

/** Checks every option when the plugin registers, so that mistakes fail at start, not on a call. */
export function resolveServerOptions(o: KiteServerOptions): ResolvedServerOptions {
  if (o === null || typeof o !== 'object') throw new KiteOptionError('kite-server', 'object', 'is needed: { name, version }')
  const c: OptionChecker = checkOptions('kite-server', o)
  const prefix = c.string('prefix', '/kite')
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(prefix)) c.fail('prefix', `must look like /kite, got ${prefix}`)
  const methodHandling = c.oneOf('methodHandling', ['method', 'first', 'latest'] as const, 'method')
  const authenticators = c.functions<Authenticator>('authenticators')
  for (const name of ['name', 'version'] as const) if (typeof o[name] !== 'string' || o[name] === '') c.fail(name, `is required (a non-empty string), got ${String(o[name])}`)
  for (const name of ['username', 'environment', 'region', 'hostname', 'id'] as const) c.string(name, undefined)
  c.object('limits')
  let identity: KiteIdentity
  let limits: Readonly<DnodeLimits>
  try {
    identity = localKite(o)
  } catch (err) {
    const message = (err as Error).message
    return c.fail(/^kite (\w+)/.exec(message)?.[1] ?? 'version', message)
  }
  try {
    limits = resolveLimits(o.limits)
  } catch (err) {
    return c.fail('limits', (err as Error).message)
  }
  const ms = { zero: true }
  return {
    identity,
    prefix,
    limits,
    maxConcurrentCalls: c.number('maxConcurrentCalls', 1000, { integer: true, min: 1 }),
    methodHandling,
    terminalMethods: c.boolean('terminalMethods', false),
    heartbeatMs: c.number('heartbeatSeconds', 10, { min: 0.001 }) * 1000,
    disconnectDelayMs: c.number('disconnectDelaySeconds', 10, { min: 0.001 }) * 1000,
    closeGraceMs: c.number('closeGraceMs', 5000, ms),
    callTimeoutMs: c.number('callTimeoutMs', 15000, ms),
    authenticators,
    clock: c.fn<Clock>('clock') ?? Date.now,
    backpressure: resolveBackpressure('kite-server', { maxBufferedBytes: o.maxBufferedBytes, graceMs: o.backpressureGraceMs }),
    handshakeTimeoutMs: c.number('handshakeTimeoutMs', 10_000, ms),
    idleTimeoutMs: c.number('idleTimeoutMs', 300_000, ms),
    maxAuthFailures: c.number('maxAuthFailures', 10, { integer: true }),
    authFailureWindowMs: c.number('authFailureWindowMs', 60_000, { min: 1 }),
    maxCallbacksHeld: c.number('maxCallbacksHeld', MAX_LOCAL_CALLBACKS, { integer: true, min: 1 }),
    warnIntervalMs: c.number('warnIntervalMs', 10_000, ms),
    http: c.boolean('http', false),
    httpSecurity: checkHttpSecurity(c, o.httpSecurity),
    describe: o.describe === undefined ? true : o.describe === 'public' ? 'public' : c.boolean('describe', true),
    checkResults: c.boolean('checkResults', process.env.NODE_ENV !== 'production'),
  }
}

/** `httpSecurity`: an array of OpenAPI security requirements (`{ scheme: string[] }`), or null when absent. */
function checkHttpSecurity(c: OptionChecker, v: unknown): Array<Record<string, string[]>> | null {
  if (v === undefined) return null
  const ok = Array.isArray(v) && v.every((r) => r !== null && typeof r === 'object' && !Array.isArray(r) && Object.values(r as object).every((scopes) => Array.isArray(scopes) && scopes.every((x) => typeof x === 'string')))
  if (!ok) c.fail('httpSecurity', 'must be an array of { scheme: [scopes] } objects')
  return v as Array<Record<string, string[]>>
}
