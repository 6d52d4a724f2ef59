import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { registerURL } from '../kite-server/url.js'
import type { ClientTlsOptions } from '../../lib/client/transports/transport.js'
import type { Logger } from 'pino'
import { Backoff, type BackoffOptions } from '../../lib/client/backoff.js'
import { checkOptions, type OptionChecker } from '../../lib/options.js'
import type { KiteClient } from '../../lib/client/client.js'
import type { KitePool, KitePoolOptions } from '../../lib/client/pool.js'
import type { TransportName } from '../../lib/client/transports/transport.js'
import { kiteError } from '../../lib/errors.js'
import { decodeKiteKey } from '../../lib/kitekey.js'
import { pluginConfig } from '../../lib/config.js'
import type { KontrolQuery, RegisterResult } from '../../lib/protocol/kontrol.js'
import { KiteFinder } from '../../lib/client/finder.js'
import { HttpKontrolLink } from './http-link.js'
import { KontrolLink } from './link.js'
import { ProxyLink } from './proxy-link.js'

/** Registering through a proxy (upstream `RegisterToProxy` / `RegisterToTunnel`). */
export interface KontrolRegisterProxyOptions {
  /** `reverse`: a reverse proxy (kite `proxy`) forwards to this kite's URL; `tunnel`: a tunnel proxy (kite `tunnelproxy`) for a kite that accepts no connections. Default `reverse`. */
  type?: 'reverse' | 'tunnel'
  /** Dial this proxy directly, authenticated with the kite.key. Default `KITE_PROXY_URL`; when neither is set the proxy is found through Kontrol. */
  url?: string
  /** Kontrol query that finds the proxy (a random match is used). Default `{ name: 'proxy' }`, or `{ username: <kite.key iss>, environment, name: 'tunnelproxy' }` for a tunnel. */
  query?: KontrolQuery
  /** Transport to the proxy. Default SockJS. */
  transport?: TransportName
}

/** Options of the kontrol-register plugin. */
export interface KontrolRegisterOptions {
  /** Kontrol's URL, or several (tried in turn). Default: `KITE_KONTROL_URL`, else the kite.key's `kontrolURL`. */
  kontrolURL?: string | string[]
  /** The kite.key to register with. Default: `$KITE_HOME/kite.key`. */
  kiteKey?: string
  /** The URL to register (a function is asked once the server listens). Default: `http(s)://<listen address><prefix>` once the server listens. */
  url?: string | (() => string)
  /** Register over HTTP with `/heartbeat` polling instead of a WebSocket. Default false. */
  http?: boolean
  /** Transport of the WebSocket link. Default SockJS. */
  transport?: TransportName
  /** Reconnect backoff (default 500 ms × 1.5 up to 30 s, ±50 %). */
  backoff?: BackoffOptions
  /** Timeout of Kontrol calls, ms. Default 15000. */
  timeout?: number
  /** Renew tokens this many seconds before they expire. Default 30. */
  renewBefore?: number
  /** Register through a reverse or tunnel proxy: Kontrol then knows this kite by the proxy's public URL. */
  proxy?: KontrolRegisterProxyOptions | boolean
  /**
   * Which address of this kite is registered when `url` is not given (Go's
   * `RegisterURL(local)`): `local`, the address the server listens on (0.0.0.0
   * becomes 127.0.0.1), or `public`, this machine's first non-internal IPv4
   * address. The scheme is https:// when the server is served over TLS. Default `local`.
   */
  registerURL?: 'local' | 'public'
  /** TLS for https/wss Kontrol URLs (and the clients getKites hands out): `ca`, `cert`, `key`, `rejectUnauthorized`. */
  tls?: ClientTlsOptions
}

/** `app.kontrolRegister`. */
export interface KontrolRegisterDecorator {
  /** Resolves with the first successful registration. */
  readonly ready: Promise<RegisterResult>
  /** True while registered. */
  readonly registered: boolean
  /** The URL registered (behind a proxy: the proxy's public URL, empty until the proxy gave one). */
  readonly url: string
  /** Behind a proxy: resolves with the first public URL the proxy gave. */
  readonly proxyReady: Promise<string> | null
  /** Clients for the kites matching `query`, each carrying a token it renews itself. */
  getKites(query: KontrolQuery): Promise<KiteClient[]>
  /** A token for the one kite matching `query` (cached; `force` asks Kontrol for a new one). */
  getToken(query: KontrolQuery, force?: boolean): Promise<string>
  /** A live pool of the kites matching `query` (also `app.kite.pool`). */
  pool(query: KontrolQuery, options?: KitePoolOptions): KitePool
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Registration with Kontrol (kontrol-register). */
    kontrolRegister: KontrolRegisterDecorator
  }
}

const KONTROL_PROTOCOLS = ['http:', 'https:', 'ws:', 'wss:'] as const

/** Checks every option when the plugin registers, so that nothing fails later, after listen. */
function checkRegisterOptions(o: KontrolRegisterOptions): { timeoutMs: number; renewBeforeMs: number; transport: TransportName | undefined; http: boolean } {
  const c: OptionChecker = checkOptions('kontrol-register', o)
  const urls = c.raw('kontrolURL')
  if (urls !== undefined) {
    const list = Array.isArray(urls) ? urls : [urls]
    if (list.length === 0) c.fail('kontrolURL', 'must name at least one URL')
    list.forEach((u, i) => c.url(Array.isArray(urls) ? `kontrolURL[${i}]` : 'kontrolURL', u, KONTROL_PROTOCOLS))
  }
  const kiteKey = c.string('kiteKey', undefined)
  if (kiteKey !== undefined) {
    try {
      decodeKiteKey(kiteKey)
    } catch (err) {
      c.fail('kiteKey', `is not a kite.key: ${(err as Error).message}`)
    }
  }
  if (typeof o.url !== 'function') c.url('url', o.url, ['http:', 'https:', 'ws:', 'wss:'])
  const proxy = c.raw('proxy')
  if (proxy !== undefined && typeof proxy !== 'boolean') c.object('proxy')
  const backoff = c.object('backoff')
  try {
    new Backoff(backoff)
  } catch (err) {
    c.fail('backoff', (err as Error).message)
  }
  c.oneOf('registerURL', ['local', 'public'] as const, 'local')
  c.object('tls')
  const transport = c.raw('transport') === undefined ? undefined : c.oneOf('transport', ['sockjs', 'websocket', 'xhr-polling', 'auto'] as const, 'sockjs')
  return {
    timeoutMs: c.number('timeout', 15000, { min: 1 }),
    renewBeforeMs: c.number('renewBefore', 30) * 1000,
    transport,
    http: c.boolean('http', false),
  }
}

async function kontrolRegisterPlugin(app: FastifyInstance, o: KontrolRegisterOptions): Promise<void> {
  const checked = checkRegisterOptions(o)
  // options > KITE_* > kite.key > defaults (lib/config): kiteKey, kontrolURL, timeout, transport.
  const { config, env, kiteKeyError } = await pluginConfig()
  if (o.kiteKey === undefined && kiteKeyError !== null) throw kiteKeyError
  const kiteKey = o.kiteKey ?? (config.kiteKey !== '' ? config.kiteKey : undefined)
  if (kiteKey === undefined) throw kiteError('KITE_ERR_CONFIG_INVALID', 'kontrol-register needs a kite.key (option kiteKey, or $KITE_HOME/kite.key)')
  const claims = decodeKiteKey(kiteKey)
  const configured = o.kontrolURL ?? env.kontrolURL ?? claims.kontrolURL
  const urls = (Array.isArray(configured) ? configured : [configured]).filter((u): u is string => typeof u === 'string' && u !== '')
  if (urls.length === 0) throw kiteError('KITE_ERR_CONFIG_INVALID', 'no kontrol URL given in config')
  for (const u of urls) checkOptions('kontrol-register', {}).url('kontrolURL', u, KONTROL_PROTOCOLS)
  const timeoutMs = o.timeout === undefined ? config.timeoutMs : checked.timeoutMs
  const transport = checked.transport ?? env.transport
  const log = app.log.child({ plugin: 'kontrol-register' }) as unknown as Logger
  // A kite's username is its kite.key's (as Go's config does): Kontrol registers
  // it under that name and issues tokens whose audience names it.
  if (app.kite.identity.username !== claims.sub) {
    log.info({ from: app.kite.identity.username, to: claims.sub }, 'kite username set from kite.key')
    app.kite.setUsername(claims.sub)
  }
  const identity = app.kite.identity
  // Without a proxy the URL registered is our own; behind one, the proxy's (empty until it answers).
  let localURL = typeof o.url === 'string' ? o.url : ''
  let url = ''
  const proxyOptions = o.proxy === true ? {} : o.proxy === false || o.proxy === undefined ? null : o.proxy
  const registeredURL = (): string => (proxyOptions === null ? localURL : url)
  const linkOptions = { urls, kiteKey, identity, backoff: o.backoff, timeoutMs, log, transport, tls: o.tls, observer: () => app.kite.observer }
  const link = checked.http ? new HttpKontrolLink(linkOptions, registeredURL) : new KontrolLink(linkOptions, registeredURL)
  let markConnected: () => void = () => {}
  const connected = new Promise<void>((resolve) => (markConnected = resolve))
  link.on('connected', () => markConnected())

  let registered = false
  let markReady: (r: RegisterResult) => void = () => {}
  const ready = new Promise<RegisterResult>((resolve) => (markReady = resolve))
  link.on('registered', (result) => {
    registered = true
    if (typeof result.kiteKey === 'string' && result.kiteKey !== '') link.setKiteKey(result.kiteKey)
    if (typeof result.publicKey === 'string' && result.publicKey !== '' && app.hasDecorator('kiteAuth')) app.kiteAuth.addTrustedKey({ publicKey: result.publicKey, issuer: claims.iss })
    log.info({ url: result.url }, 'registered with kontrol')
    markReady(result)
  })
  link.on('lost', (reason) => {
    registered = false
    log.warn({ reason }, 'lost kontrol; registering again')
  })

  const caller = {
    async call(method: string, arg: unknown): Promise<unknown> {
      if (!(link instanceof KontrolLink)) throw kiteError('KITE_ERR_CONFIG_INVALID', 'getKites needs the WebSocket link (http: false)')
      await Promise.race([connected, ready, new Promise((_, reject) => setTimeout(() => reject(kiteError('KITE_ERR_CALL_TIMEOUT', method, timeoutMs)), timeoutMs).unref())])
      const client = link.client
      if (client === null) throw kiteError('KITE_ERR_SEND_NOT_CONNECTED')
      return client.tell(method, arg)
    },
    // Each connection to Kontrol is a new client: watches last as long as it does.
    session: () => (link instanceof KontrolLink ? link.client : null),
  }
  const finder = new KiteFinder(caller, { renewBeforeMs: checked.renewBeforeMs, retryMs: 10000, log, client: { kite: identity, logger: log, tls: o.tls }, observer: () => app.kite.observer })

  let proxyLink: ProxyLink | null = null
  let proxyReady: Promise<string> | null = null
  if (proxyOptions !== null) {
    const kind = proxyOptions.type ?? 'reverse'
    if (kind !== 'reverse' && kind !== 'tunnel') throw kiteError('KITE_ERR_CONFIG_INVALID', `proxy.type must be reverse or tunnel, got ${String(kind)}`)
    const direct = proxyOptions.url ?? process.env.KITE_PROXY_URL ?? null
    if (direct !== null && direct !== '') new URL(direct)
    const query = proxyOptions.query ?? (kind === 'tunnel' ? { username: claims.iss, environment: identity.environment, name: 'tunnelproxy' } : { name: 'proxy' })
    const pl = new ProxyLink({
      kind,
      direct: direct === '' ? null : direct,
      query,
      find: (q) => finder.getKites(q),
      kiteKey: () => link.currentKiteKey,
      identity,
      localURL: () => localURL,
      tunnel: (arg) => app.kite.serveTunnel(arg),
      transport: proxyOptions.transport,
      backoff: o.backoff,
      timeoutMs,
      log,
    })
    proxyLink = pl
    let markProxy: (u: string) => void = () => {}
    proxyReady = new Promise<string>((resolve) => (markProxy = resolve))
    pl.on('url', (u) => {
      url = u
      markProxy(u)
      link.reregister()
    })
    pl.on('lost', (reason) => log.warn({ reason }, 'kontrol-register: lost the proxy; registering with it again'))
    // The proxy is found through Kontrol: look for it once connected (or at once when dialed directly).
    if (direct === null || direct === '') void connected.then(() => pl.start())
  }

  const startLinks = (): void => {
    link.start()
    const direct = proxyOptions?.url ?? process.env.KITE_PROXY_URL ?? ''
    if (proxyLink !== null && direct !== '') proxyLink.start()
  }
  // A kite behind a tunnel needs no port: it registers once ready, listening or not.
  const tunnelOnly = proxyOptions !== null && proxyOptions.type === 'tunnel'
  if (tunnelOnly) app.addHook('onReady', async () => startLinks())
  app.addHook('onListen', async () => {
    if (tunnelOnly) return
    if (typeof o.url === 'function') localURL = o.url()
    if (localURL === '') localURL = registerURL(app, o.registerURL ?? 'local')
    startLinks()
  })
  app.addHook('preClose', async () => {
    await proxyLink?.close()
    await link.close()
  })
  app.kite.setFinder(finder)
  app.decorate('kontrolRegister', {
    ready,
    get registered() {
      return registered
    },
    get url() {
      return registeredURL()
    },
    proxyReady,
    // As Go's kontrolclient: Kontrol answers an empty list; finding nothing is an error for the
    // caller (the finder itself returns the empty list: pools rely on it).
    getKites: async (query: KontrolQuery) => {
      const kites = await finder.getKites(query)
      if (kites.length === 0) throw kiteError('KITE_ERR_KONTROL_NO_KITES')
      return kites
    },
    getToken: (query: KontrolQuery, force?: boolean) => finder.getToken(query, force),
    pool: (query: KontrolQuery, options?: KitePoolOptions) => finder.pool(query, options),
  })
}

/**
 * Registers the app's kite with Kontrol once the server listens, keeps it
 * registered (heartbeats, re-registering after drops and Kontrol restarts),
 * and deregisters on close. Adds `app.kite.getKites(query)`.
 */
export const kontrolRegister = fp(kontrolRegisterPlugin, { name: 'kontrol-register', fastify: '5.x', dependencies: ['kite-server'] })
export default kontrolRegister
