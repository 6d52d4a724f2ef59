/**
 * The browser's WebSocket transports (see `websocket.ts` for Node's): the
 * page's own `WebSocket`, which cannot set headers (the browser sends the
 * page's Origin) nor send pings. SockJS servers send an `h` frame every 25 s,
 * so a SockJS socket silent for the idle timeout is dropped; a raw one is
 * left to the browser's own TCP handling. A page cannot pause reading: a
 * server that leaves more than `maxBufferedBytes` of ours unsent for the
 * grace period is dropped.
 */
import { MessageBatcher } from '../../transport/batcher.js'
import { kiteError } from '../../errors.js'
import { WriteGate } from '../../connection/backpressure.js'
import { deliverSockjsFrame, parseServerFrame, sockjsOpenError } from './sockjs-frames.js'
import { joinPath, sockjsSessionPath, type ClientTransport, type TransportEvents, type TransportOptions } from './transport.js'

export function toWebSocketURL(url: URL): URL {
  const u = new URL(url.href)
  u.protocol = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss:' : 'ws:'
  return u
}

export function sockjsWebSocketURL(url: URL): URL {
  const u = toWebSocketURL(url)
  u.pathname = joinPath(u.pathname, `${sockjsSessionPath()}/websocket`)
  return u
}

abstract class BrowserWebSocketTransport implements ClientTransport {
  protected ws: WebSocket | null = null
  protected gate: WriteGate | null = null
  private closedByUs = false
  private isOpen = false
  private idleTimer: ReturnType<typeof setInterval> | null = null
  private lastSeen = 0

  constructor(
    protected readonly url: URL,
    protected readonly events: TransportEvents,
    protected readonly options: TransportOptions,
  ) {}

  abstract send(text: string): void
  protected abstract target(): URL
  protected abstract onText(text: string, ready: (err?: Error) => void): void
  /** Whether to drop a socket silent for the idle timeout. */
  protected abstract readonly watchIdle: boolean

  open(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.target().href)
      this.ws = ws
      let settled = false
      const ready = (err?: Error): void => {
        if (settled) return
        settled = true
        signal.removeEventListener('abort', onAbort)
        if (err !== undefined) {
          ws.close()
          reject(err)
          return
        }
        this.isOpen = true
        this.watch()
        this.gate = new WriteGate(this.options.backpressure, {
          queued: () => ws.bufferedAmount,
          pause: () => {},
          resume: () => {},
          overflow: () => this.lost(`the server does not read: more than ${this.options.backpressure.maxBufferedBytes} bytes unsent for ${this.options.backpressure.graceMs} ms`),
        })
        resolve()
      }
      const onAbort = (): void => ready(signal.reason as Error)
      signal.addEventListener('abort', onAbort, { once: true })
      ws.onmessage = (ev: MessageEvent) => {
        this.lastSeen = Date.now()
        if (typeof ev.data !== 'string') return this.fail('binary message', ready)
        if (ev.data.length > this.options.maxPayload) return this.fail('message too big', ready)
        this.onText(ev.data, ready)
      }
      // A browser does not say why a WebSocket failed; before it opened, take it as
      // a refused upgrade (the words `auto` looks for), so `auto` falls back to XHR polling.
      ws.onerror = () => ready(kiteError('KITE_ERR_TRANSPORT_UPGRADE_REFUSED', 'the WebSocket could not be opened'))
      ws.onclose = (ev: CloseEvent) => {
        if (this.idleTimer !== null) clearInterval(this.idleTimer)
        this.gate?.dispose()
        if (!this.isOpen) ready(kiteError('KITE_ERR_TRANSPORT_UPGRADE_REFUSED', `connection closed (${ev.code})`))
        else if (!this.closedByUs) this.events.close(`connection closed (${ev.code}${ev.reason.length > 0 ? ` ${ev.reason}` : ''})`)
      }
      ws.onopen = () => this.onSocketOpen(ready)
    })
  }

  private fail(reason: string, ready: (err?: Error) => void): void {
    if (!this.isOpen) ready(kiteError('KITE_ERR_TRANSPORT_SOCKJS_OPEN', reason))
    else this.lost(reason)
  }

  private watch(): void {
    const idle = this.options.idleTimeoutMs
    if (!this.watchIdle || !(idle > 0)) return
    this.lastSeen = Date.now()
    this.idleTimer = setInterval(() => {
      if (Date.now() - this.lastSeen > idle) this.lost(`no data from the peer for ${Math.round(idle / 1000)} s`)
    }, Math.max(Math.floor(idle / 3), 10))
  }

  protected onSocketOpen(_ready: (err?: Error) => void): void {}

  protected lost(reason: string): void {
    if (this.closedByUs) return
    this.closedByUs = true
    this.ws?.close()
    this.events.close(reason)
  }

  close(): void {
    if (this.closedByUs) return
    this.closedByUs = true
    if (this.idleTimer !== null) clearInterval(this.idleTimer)
    this.gate?.dispose()
    this.ws?.close(1000)
  }
}

/** Raw WebSocket: one dnode message per text message. */
export class RawWebSocketTransport extends BrowserWebSocketTransport {
  protected readonly watchIdle = false

  protected target(): URL {
    return toWebSocketURL(this.url)
  }

  protected override onSocketOpen(ready: (err?: Error) => void): void {
    ready()
  }

  protected onText(text: string): void {
    this.events.message(text)
  }

  send(text: string): void {
    if (this.ws?.readyState !== WebSocket.OPEN) throw kiteError('KITE_ERR_TRANSPORT_NOT_OPEN', 'the WebSocket')
    this.ws.send(text)
    this.gate?.check()
  }
}

/** SockJS over WebSocket; the messages of one turn go in one array. */
export class SockjsWebSocketTransport extends BrowserWebSocketTransport {
  protected readonly watchIdle = true
  private opened = false

  protected target(): URL {
    return sockjsWebSocketURL(this.url)
  }

  protected onText(text: string, ready: (err?: Error) => void): void {
    const frame = parseServerFrame(text)
    if (!this.opened) {
      this.opened = frame.kind === 'open'
      if (this.opened) ready()
      else ready(sockjsOpenError(frame))
      return
    }
    const lost = deliverSockjsFrame(frame, this.events)
    if (lost !== null) this.lost(lost)
  }

  private readonly batcher = new MessageBatcher((batch) => {
    if (this.ws?.readyState !== WebSocket.OPEN) return
    this.ws.send(JSON.stringify(batch))
    this.gate?.check()
  })

  send(text: string): void {
    if (this.ws?.readyState !== WebSocket.OPEN) throw kiteError('KITE_ERR_TRANSPORT_NOT_OPEN', 'the WebSocket')
    this.batcher.push(text)
  }
}
