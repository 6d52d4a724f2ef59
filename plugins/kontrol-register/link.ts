import type { Logger } from 'pino'
import type { BackoffOptions } from '../../lib/client/backoff.js'
import { LinkBase } from './link-base.js'
import { KiteClient } from '../../lib/client/client.js'
import type { ClientTlsOptions, TransportName } from '../../lib/client/transports/transport.js'
import type { KiteIdentity } from '../../lib/protocol/kite.js'
import type { RegisterResult } from '../../lib/protocol/kontrol.js'
import type { KiteObserver } from '../../lib/observe/observer.js'

export interface LinkOptions {
  /** Kontrol URLs, tried in turn. */
  urls: string[]
  kiteKey: string
  identity: KiteIdentity
  transport?: TransportName
  /** TLS for https/wss Kontrol URLs. */
  tls?: ClientTlsOptions
  backoff?: BackoffOptions
  timeoutMs: number
  log: Logger
  /** The kite's observer (metrics, tracing) for calls to Kontrol, read on each dial. */
  observer?: () => KiteObserver | null
}

/**
 * The kite's WebSocket link to Kontrol: dials (rotating through the URLs
 * with jittered backoff, for ever), registers on every connect, and answers
 * Kontrol's `kite.heartbeat` through its KiteClient. Closing the link closes
 * the connection, which deregisters the kite at once.
 */
export class KontrolLink extends LinkBase {
  client: KiteClient | null = null

  constructor(
    private readonly o: LinkOptions,
    registerURL: () => string,
  ) {
    super(o, registerURL)
  }

  override setKiteKey(key: string): void {
    super.setKiteKey(key)
    if (this.client !== null) this.client.auth = { type: 'kiteKey', key }
  }

  start(): void {
    void this.dial()
  }

  private async dial(): Promise<void> {
    if (this.closed) return
    const url = this.nextURL()
    const client = new KiteClient(url, {
      transport: this.o.transport,
      tls: this.o.tls,
      auth: { type: 'kiteKey', key: this.kiteKey },
      kite: this.o.identity,
      timeout: this.o.timeoutMs,
      connectTimeout: this.o.timeoutMs,
      logger: this.o.log,
      observer: this.o.observer?.() ?? null,
    })
    this.client = client
    try {
      await client.connect()
      client.once('disconnect', (reason) => this.lostConnection(client, reason))
      this.emit('connected')
      if (this.registerURL() === '') {
        // Behind a proxy: registered once the proxy has given us our public URL.
        this.backoff.reset()
        return
      }
      await this.registerOn(client)
    } catch (err) {
      await client.close()
      // A drop during register was already handled by lostConnection(): retry once, not twice.
      if (this.closed || this.client !== client || this.timer !== null) return
      this.o.log.warn({ kontrol: url, err: (err as Error).message }, 'kontrol-register: cannot register; retrying')
      this.retry()
    }
  }

  private async registerOn(client: KiteClient): Promise<void> {
    const result = (await client.tell('register', { url: this.registerURL() })) as RegisterResult
    if (this.closed || this.client !== client) return
    this.backoff.reset()
    this.emit('registered', result)
  }

  reregister(): void {
    const client = this.client
    if (client === null || !client.connected || this.registerURL() === '') return
    this.registerOn(client).catch((err: Error) => {
      this.o.log.warn({ err: err.message }, 'kontrol-register: cannot register the new URL; reconnecting')
      this.lostConnection(client, `register failed: ${err.message}`)
    })
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
