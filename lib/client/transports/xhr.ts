import { tlsFetch } from '../tls-fetch.js'
import { kiteError } from '../../errors.js'
import { joinPath, sockjsSessionPath, type ClientTlsOptions, type ClientTransport, type TransportEvents } from './transport.js'
import { deliverSockjsFrame, parseServerFrame, sockjsOpenError } from './sockjs-frames.js'
import { WriteGate, type BackpressureOptions } from '../../connection/backpressure.js'

/** How long a poll may wait for its first byte before a new one is sent (G `Config.Timeout`). */
const POLL_TIMEOUT_MS = 30000

/** Messages sent in one `xhr_send` at most, in characters (servers cap request bodies). */
const MAX_SEND_CHARS = 256 * 1024

/**
 * SockJS XHR polling (spec §1.5): a loop of `POST …/xhr` receives frames;
 * `POST …/xhr_send` sends the queued messages, one request at a time so they
 * arrive in order.
 */
export class XhrPollingTransport implements ClientTransport {
  private readonly base: string
  /** The kite URL's query, kept on every request (a tunnel proxy's `?kiteID=`). */
  private readonly search: string
  private readonly stop = new AbortController()
  private closed = false
  private outbox: string[] = []
  private outboxChars = 0
  private sending = false
  private readonly gate: WriteGate
  private resumePolling: (() => void) | null = null
  private readonly http: ReturnType<typeof tlsFetch>

  constructor(
    url: URL,
    private readonly events: TransportEvents,
    backpressure: BackpressureOptions,
    tls?: ClientTlsOptions,
  ) {
    // fetch with its own connection pool when TLS settings are given (undici Agent, as Node's fetch).
    this.http = tlsFetch(tls)
    this.gate = new WriteGate(backpressure, {
      queued: () => this.outboxChars,
      pause: () => {},
      resume: () => {
        this.resumePolling?.()
        this.resumePolling = null
      },
      overflow: () => this.lost(`the server does not read: more than ${backpressure.maxBufferedBytes} bytes unsent for ${backpressure.graceMs} ms`),
    })
    const u = new URL(url.href)
    if (u.protocol === 'ws:') u.protocol = 'http:'
    if (u.protocol === 'wss:') u.protocol = 'https:'
    this.base = joinPath(`${u.origin}${u.pathname}`, sockjsSessionPath())
    this.search = u.search
  }

  private async post(path: string, body: string, signal: AbortSignal): Promise<Response> {
    try {
      return await this.http.fetch(`${this.base}/${path}${this.search}`, { method: 'POST', body, headers: { 'Content-Type': 'text/plain' }, signal })
    } catch (err) {
      // fetch says only "fetch failed"; the reason (refused, a certificate that does not verify…) is its cause.
      const cause = (err as { cause?: unknown }).cause
      if ((err as Error).name === 'TypeError' && cause instanceof Error) {
        const failed = kiteError('KITE_ERR_TRANSPORT_FETCH', cause.message)
        failed.cause = cause
        throw failed
      }
      throw err
    }
  }

  async open(signal: AbortSignal): Promise<void> {
    const both = AbortSignal.any([signal, this.stop.signal])
    const res = await this.post('xhr', '', both)
    const text = await res.text()
    if (res.status !== 200) throw kiteError('KITE_ERR_TRANSPORT_SOCKJS_OPEN', `status ${res.status}`)
    const frame = parseServerFrame(text.replace(/\n$/, ''))
    if (frame.kind !== 'open') throw sockjsOpenError(frame)
    void this.pollLoop()
  }

  private async pollLoop(): Promise<void> {
    while (!this.closed) {
      // Too much of ours waits unsent: read nothing more from the server until it drains.
      if (this.gate.paused) await new Promise<void>((resolve) => (this.resumePolling = resolve))
      if (this.closed) return
      let status: number
      let text: string
      try {
        const res = await this.post('xhr', '', AbortSignal.any([this.stop.signal, AbortSignal.timeout(POLL_TIMEOUT_MS)]))
        status = res.status
        text = await res.text()
      } catch (err) {
        if (this.closed) return
        if ((err as Error).name === 'TimeoutError') continue
        this.lost(`poll failed: ${(err as Error).message}`)
        return
      }
      if (status === 404) return this.lost('session is gone')
      if (status !== 200) return this.lost(`poll answered with status ${status}`)
      if (text === '') return this.lost('session ended by the server')
      const frame = parseServerFrame(text.replace(/\n$/, ''))
      const lost = deliverSockjsFrame(frame, this.events)
      if (lost !== null) return this.lost(lost)
    }
  }

  send(text: string): void {
    if (this.closed) throw kiteError('KITE_ERR_TRANSPORT_NOT_OPEN', 'the XHR session')
    this.outbox.push(text)
    this.outboxChars += text.length
    this.gate.check()
    if (!this.sending) void this.sendLoop()
  }

  /** Sends what waits, one request at a time (so messages keep their order), until nothing waits. */
  private async sendLoop(): Promise<void> {
    this.sending = true
    try {
      while (this.outbox.length > 0 && !this.closed) {
        const batch = this.takeBatch()
        const res = await this.post('xhr_send', JSON.stringify(batch), this.stop.signal)
        await res.arrayBuffer()
        if (res.status === 404) return this.lost('session is gone')
        if (res.status !== 200 && res.status !== 204) return this.lost(`send answered with status ${res.status}`)
      }
    } catch (err) {
      this.lost(`send failed: ${(err as Error).message}`)
    } finally {
      this.sending = false
    }
  }

  /** The next messages to send, at most MAX_SEND_CHARS of them (at least one). */
  private takeBatch(): string[] {
    let n = 0
    let chars = 0
    while (n < this.outbox.length && (n === 0 || chars + this.outbox[n]!.length <= MAX_SEND_CHARS)) chars += this.outbox[n++]!.length
    const batch = n === this.outbox.length ? this.outbox : this.outbox.slice(0, n)
    this.outbox = n === this.outbox.length ? [] : this.outbox.slice(n)
    this.outboxChars -= chars
    return batch
  }

  private lost(reason: string): void {
    if (this.closed) return
    this.shutdown()
    this.events.close(reason)
  }

  private shutdown(): void {
    this.closed = true
    this.stop.abort()
    this.gate.dispose()
    this.outbox = []
    this.outboxChars = 0
    this.resumePolling?.()
    this.resumePolling = null
    this.http.close()
  }

  close(): void {
    if (this.closed) return
    this.shutdown()
  }
}
