import { kiteError } from '../../lib/errors.js'
import { tlsFetch } from '../../lib/client/tls-fetch.js'
import type { ClientTlsOptions } from '../../lib/client/transports/transport.js'
import type { Logger } from 'pino'
import type { BackoffOptions } from '../../lib/client/backoff.js'
import type { KiteIdentity } from '../../lib/protocol/kite.js'
import type { RegisterResult } from '../../lib/protocol/kontrol.js'
import { LinkBase } from './link-base.js'

export interface HttpLinkOptions {
  urls: string[]
  kiteKey: string
  identity: KiteIdentity
  backoff?: BackoffOptions
  timeoutMs: number
  log: Logger
  /** TLS for https Kontrol URLs. */
  tls?: ClientTlsOptions
}

/** Kontrol's HTTP base: its kite URL without a trailing `/kite` (spec §7.3). */
export function httpBase(kontrolURL: string): string {
  return kontrolURL.replace(/\/+$/, '').replace(/\/kite$/, '')
}

/**
 * Registration over HTTP (spec §7.3): `POST /register`, then `GET
 * /heartbeat?id=` every `heartbeatInterval` seconds; `registeragain` (Kontrol
 * restarted or forgot us) registers again.
 */
export class HttpKontrolLink extends LinkBase {
  constructor(
    private readonly o: HttpLinkOptions,
    registerURL: () => string,
  ) {
    super(o, registerURL)
    this.http = tlsFetch(o.tls)
  }

  private readonly http: ReturnType<typeof tlsFetch>

  override async close(): Promise<void> {
    await super.close()
    this.http.close()
  }

  start(): void {
    if (this.registerURL() !== '') void this.register()
  }

  reregister(): void {
    if (this.registerURL() !== '') void this.register()
  }

  private async register(): Promise<void> {
    const base = httpBase(this.nextURL())
    try {
      const res = await this.http.fetch(`${base}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: this.registerURL(), kite: this.o.identity, auth: { type: 'kiteKey', key: this.kiteKey } }),
        signal: AbortSignal.timeout(this.o.timeoutMs),
      })
      const text = await res.text()
      const body = JSON.parse(text) as RegisterResult
      if (res.status !== 200 || (body.err ?? '') !== '') throw kiteError('KITE_ERR_REGISTER_REFUSED', body.err ?? `status ${res.status}`)
      if (!(body.heartbeatInterval > 0)) throw kiteError('KITE_ERR_REGISTER_NO_HEARTBEAT')
      this.backoff.reset()
      this.emit('registered', body)
      this.schedule(body.heartbeatInterval * 1000, () => this.beat(base, body.heartbeatInterval * 1000))
    } catch (err) {
      if (this.closed) return
      this.o.log.warn({ kontrol: base, err: (err as Error).message }, 'kontrol-register: HTTP register failed; retrying')
      this.schedule(this.backoff.next(), () => this.register())
    }
  }

  private async beat(base: string, intervalMs: number): Promise<void> {
    try {
      const res = await this.http.fetch(`${base}/heartbeat?id=${encodeURIComponent(this.o.identity.id)}`, { signal: AbortSignal.timeout(this.o.timeoutMs) })
      const text = (await res.text()).slice(0, 16).trim()
      if (text === 'registeragain') {
        this.emit('lost', 'kontrol asked to register again')
        await this.register()
        return
      }
      if (res.status !== 200 || text !== 'pong') this.o.log.warn({ status: res.status }, 'kontrol-register: unexpected heartbeat answer')
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'kontrol-register: heartbeat failed')
    }
    this.schedule(intervalMs, () => this.beat(base, intervalMs))
  }
}
