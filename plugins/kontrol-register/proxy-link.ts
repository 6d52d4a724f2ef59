import type { Logger } from 'pino'
import type { BackoffOptions } from '../../lib/client/backoff.js'
import { KiteClient } from '../../lib/client/client.js'
import type { TransportName } from '../../lib/client/transports/transport.js'
import { kiteError } from '../../lib/errors.js'
import type { KiteIdentity } from '../../lib/protocol/kite.js'
import type { KontrolQuery } from '../../lib/protocol/kontrol.js'
import { Retrying } from './link-base.js'

export interface ProxyLinkOptions {
  /** `reverse` (a kite named `proxy`) or `tunnel` (`tunnelproxy`). */
  kind: 'reverse' | 'tunnel'
  /** Dial this proxy directly with the kite.key (`KITE_PROXY_URL`); null finds it through Kontrol. */
  direct: string | null
  query: KontrolQuery
  find: (query: KontrolQuery) => Promise<KiteClient[]>
  kiteKey: () => string
  identity: KiteIdentity
  /** This kite's own URL, registered with a reverse proxy. */
  localURL: () => string
  /** Serves `kite.tunnel` calls of a tunnel proxy. */
  tunnel: (url: unknown) => Promise<unknown>
  transport?: TransportName
  backoff?: BackoffOptions
  timeoutMs: number
  log: Logger
}

/**
 * The `kite.tunnel` argument of a tunnel proxy (spec §12.1), checked before
 * the kite dials anything: `{ url }` with a ws(s) URL of the shape
 * `/tunnel/<server>/<session>/websocket`, on one of `hosts` (the tunnel
 * proxy's own). Returns the argument, or throws an argumentError.
 */
export function checkTunnelURL(arg: unknown, hosts: ReadonlySet<string>): { url: string } {
  const raw = arg !== null && typeof arg === 'object' ? (arg as { url?: unknown }).url : undefined
  if (typeof raw !== 'string' || !URL.canParse(raw)) throw kiteError('KITE_ERR_ARGUMENT_INVALID', 'kite.tunnel needs {url}')
  const url = new URL(raw)
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw kiteError('KITE_ERR_ARGUMENT_INVALID', 'kite.tunnel needs a ws:// or wss:// URL')
  if (!hosts.has(url.host)) throw kiteError('KITE_ERR_ARGUMENT_INVALID', `kite.tunnel: ${url.host} is not the tunnel proxy's host`)
  if (!/^\/tunnel\/[^/]+\/[^/]+\/websocket$/.test(url.pathname)) throw kiteError('KITE_ERR_ARGUMENT_INVALID', 'kite.tunnel: the URL must be /tunnel/<server>/<session>/websocket')
  return { url: raw }
}

export interface ProxyLinkEvents {
  /** The proxy gave this kite a public URL. */
  url: [url: string]
  /** The proxy connection dropped; the public URL is gone. */
  lost: [reason: string]
}

/**
 * Upstream's `RegisterToProxy` / `RegisterToTunnel` (spec §9.7): find the
 * proxy (`KITE_PROXY_URL`, else a random kite Kontrol returns for the
 * query), dial it, call its `register` with this kite's URL, and hand the
 * public URL it returns on; start over (with backoff) when the connection
 * drops. For a tunnel proxy the same connection carries its `kite.tunnel`
 * calls.
 */
export class ProxyLink extends Retrying<ProxyLinkEvents> {
  client: KiteClient | null = null
  /** Hosts the tunnel proxy's `kite.tunnel` URLs may be on: the proxy's URL and the public one its register returned. */
  private tunnelHosts: Set<string> | null = null

  constructor(private readonly o: ProxyLinkOptions) {
    super(o.backoff)
  }

  start(): void {
    void this.dial()
  }

  private async connectProxy(): Promise<KiteClient> {
    let client: KiteClient
    if (this.o.direct !== null) {
      client = new KiteClient(this.o.direct, { transport: this.o.transport, auth: { type: 'kiteKey', key: this.o.kiteKey() }, kite: this.o.identity, timeout: this.o.timeoutMs, connectTimeout: this.o.timeoutMs, logger: this.o.log })
    } else {
      const found = await this.o.find(this.o.query)
      if (found.length === 0) throw kiteError('KITE_ERR_KONTROL_NO_KITES')
      client = found[Math.floor(Math.random() * found.length)]!
      for (const other of found) if (other !== client) void other.close()
    }
    if (this.o.kind === 'tunnel') {
      // kite.tunnel is answered here only, on this kite's own connection to the proxy it chose, and only for
      // that proxy's tunnel URLs: never from the method table, where any caller could make the kite dial any URL.
      const hosts = new Set([client.url.host])
      this.tunnelHosts = hosts
      client.handle('kite.tunnel', (req) => this.o.tunnel(checkTunnelURL(req.args[0], hosts)))
    }
    this.client = client
    await client.connect()
    return client
  }

  private async dial(): Promise<void> {
    if (this.closed) return
    let client: KiteClient | null = null
    try {
      client = await this.connectProxy()
      const own = client
      client.once('disconnect', (reason) => this.lostConnection(own, reason))
      // Upstream sends "" to a tunnel proxy, which ignores the argument.
      const url = await client.tellWithTimeout('register', this.o.timeoutMs, this.o.kind === 'tunnel' ? '' : this.o.localURL())
      if (typeof url !== 'string' || !URL.canParse(url)) throw kiteError('KITE_ERR_RESPONSE_INVALID')
      if (this.closed || this.client !== own) return
      this.tunnelHosts?.add(new URL(url).host)
      this.backoff.reset()
      this.o.log.info({ url }, 'kontrol-register: registered with the proxy')
      this.emit('url', url)
    } catch (err) {
      await client?.close()
      if (this.closed || (client !== null && this.client !== client) || this.timer !== null) return
      this.o.log.warn({ err: (err as Error).message, proxy: this.o.direct ?? this.o.query }, 'kontrol-register: cannot register with the proxy; retrying')
      this.retry()
    }
  }

  private lostConnection(client: KiteClient, reason: string): void {
    if (this.closed || this.client !== client) return
    this.emit('lost', reason)
    void client.close()
    this.retry()
  }

  private retry(): void {
    this.schedule(this.backoff.next(), () => this.dial())
  }

  override async close(): Promise<void> {
    await super.close()
    await this.client?.close()
  }
}
