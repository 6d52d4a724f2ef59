import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { Backoff, type BackoffOptions } from '../../lib/client/backoff.js'
import { KiteClient } from '../../lib/client/client.js'
import type { TransportName } from '../../lib/client/transports/transport.js'
import type { KiteIdentity } from '../../lib/protocol/kite.js'
import type { RegisterResult } from '../../lib/protocol/kontrol.js'

export interface LinkOptions {
  /** Kontrol URLs, tried in turn. */
  urls: string[]
  kiteKey: string
  identity: KiteIdentity
  transport?: TransportName
  backoff?: BackoffOptions
  timeoutMs: number
  log: Logger
}

/** Events: `registered` (result), `lost` (reason). */
export interface LinkEvents {
  registered: [result: RegisterResult]
  lost: [reason: string]
}

/**
 * The kite's WebSocket link to Kontrol: dials (rotating through the URLs
 * with jittered backoff, for ever), registers on every connect, and answers
 * Kontrol's `kite.heartbeat` through its KiteClient. Closing the link closes
 * the connection, which deregisters the kite at once.
 */
export class KontrolLink extends EventEmitter<LinkEvents> {
  client: KiteClient | null = null
  private closed = false
  private attempt = 0
  private timer: NodeJS.Timeout | null = null
  private readonly backoff: Backoff
  private kiteKey: string

  constructor(
    private readonly o: LinkOptions,
    private readonly registerURL: () => string,
  ) {
    super()
    this.backoff = new Backoff({ initialMs: 500, maxMs: 30000, ...o.backoff })
    this.kiteKey = o.kiteKey
  }

  /** Replaces the kite.key sent to Kontrol (after Kontrol re-issued it). */
  setKiteKey(key: string): void {
    this.kiteKey = key
    if (this.client !== null) this.client.auth = { type: 'kiteKey', key }
  }

  start(): void {
    void this.dial()
  }

  private async dial(): Promise<void> {
    if (this.closed) return
    const url = this.o.urls[this.attempt++ % this.o.urls.length]!
    const client = new KiteClient(url, {
      transport: this.o.transport,
      auth: { type: 'kiteKey', key: this.kiteKey },
      kite: this.o.identity,
      timeout: this.o.timeoutMs,
      connectTimeout: this.o.timeoutMs,
      logger: this.o.log,
    })
    this.client = client
    try {
      await client.connect()
      client.once('disconnect', (reason) => this.lostConnection(client, reason))
      const result = (await client.tell('register', { url: this.registerURL() })) as RegisterResult
      if (this.closed) return
      this.backoff.reset()
      this.emit('registered', result)
    } catch (err) {
      await client.close()
      // A drop during register was already handled by lostConnection(): retry once, not twice.
      if (this.closed || this.client !== client || this.timer !== null) return
      this.o.log.warn({ kontrol: url, err: (err as Error).message }, 'kontrol-register: cannot register; retrying')
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
    if (this.closed) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      void this.dial()
    }, this.backoff.next())
    this.timer.unref()
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    await this.client?.close()
  }
}
