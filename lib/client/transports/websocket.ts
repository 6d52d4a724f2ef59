import WebSocket from 'ws'
import { kiteError } from '../../errors.js'
import { joinPath, sockjsSessionPath, type ClientTransport, type TransportEvents, type TransportOptions } from './transport.js'
import { deliverSockjsFrame, parseServerFrame, sockjsOpenError } from './sockjs-frames.js'
import { corkUntilTickEnd } from '../../transport/cork.js'
import { MessageBatcher } from '../../transport/batcher.js'
import { WriteGate } from '../../connection/backpressure.js'

/** `http(s)://` becomes `ws(s)://`; a `ws(s)://` URL stays as it is. */
export function toWebSocketURL(url: URL): URL {
  const u = new URL(url.href)
  if (u.protocol === 'https:' || u.protocol === 'wss:') u.protocol = 'wss:'
  else u.protocol = 'ws:'
  return u
}

/** The G client's `makeWebsocketURL`: `<kite url>/<server>/<session>/websocket`, query kept. */
export function sockjsWebSocketURL(url: URL): URL {
  const u = toWebSocketURL(url)
  u.pathname = joinPath(u.pathname, `${sockjsSessionPath()}/websocket`)
  return u
}

function endOfTick(fn: () => void): void {
  process.nextTick(fn)
}

function textOf(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString()
  return Buffer.isBuffer(data) ? data.toString() : Buffer.from(data).toString()
}

abstract class WebSocketTransport implements ClientTransport {
  protected ws: WebSocket | null = null
  /** Pauses reading from the server while too much of ours waits unsent; drops the connection when that lasts. */
  protected gate: WriteGate | null = null
  private closedByUs = false
  private isOpen = false
  /** Something arrived since the idle watch last looked (a flag, not a clock read per message). */
  private heard = true

  constructor(
    protected readonly url: URL,
    protected readonly events: TransportEvents,
    protected readonly options: TransportOptions,
  ) {}

  abstract send(text: string): void
  /** Where to dial. */
  protected abstract target(): URL
  /** Handles one text message; before the transport is open, `ready` ends the opening. */
  protected abstract onText(text: string, ready: (err?: Error) => void): void

  /**
   * Dials, and resolves once the transport is ready. The message listener is
   * attached before the handshake ends, since a first frame can arrive in the
   * same packet as the 101 response.
   */
  open(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.target(), { ...this.options.tls, headers: { Origin: `${this.url.protocol}//${this.url.host}` }, maxPayload: this.options.maxPayload, handshakeTimeout: 15000, skipUTF8Validation: true, perMessageDeflate: false })
      this.ws = ws
      let settled = false
      const ready = (err?: Error): void => {
        if (settled) return
        settled = true
        signal.removeEventListener('abort', onAbort)
        if (err !== undefined) {
          ws.terminate()
          reject(err)
          return
        }
        this.isOpen = true
        this.watch(ws)
        this.gate = new WriteGate(this.options.backpressure, {
          queued: () => ws.bufferedAmount,
          pause: () => ws.pause(),
          resume: () => ws.resume(),
          overflow: () => this.lost(`the server does not read: more than ${this.options.backpressure.maxBufferedBytes} bytes unsent for ${this.options.backpressure.graceMs} ms`),
        })
        ws.once('close', () => this.gate?.dispose())
        resolve()
      }
      const onAbort = (): void => ready(signal.reason as Error)
      signal.addEventListener('abort', onAbort, { once: true })
      ws.on('message', (data) => {
        this.heard = true
        this.onText(textOf(data), ready)
      })
      ws.on('error', (err) => ready(err))
      // Any answer but 101 to the upgrade: the server (or a proxy before it) refuses WebSocket here.
      ws.on('unexpected-response', (_req, res) => {
        res.resume()
        ready(kiteError('KITE_ERR_TRANSPORT_UPGRADE_REFUSED', res.statusCode))
      })
      ws.once('close', (code, reason) => {
        if (!this.isOpen) ready(kiteError('KITE_ERR_TRANSPORT_CLOSED', code))
        else if (!this.closedByUs) this.events.close(`connection closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`)
      })
      this.onDialStarted(ws, ready)
    })
  }

  /**
   * Half-open TCP connections send nothing and fail nothing: every third of
   * the idle timeout the peer is pinged, and a peer silent for the whole
   * timeout (no frame, no pong; SockJS servers also send `h` frames) is lost.
   */
  private watch(ws: WebSocket): void {
    const idle = this.options.idleTimeoutMs
    if (!(idle > 0)) return
    let lastSeen = Date.now()
    ws.on('pong', () => {
      this.heard = true
    })
    const timer = setInterval(() => {
      const now = Date.now()
      if (this.heard) {
        this.heard = false
        lastSeen = now
      }
      if (now - lastSeen > idle) this.lost(`no data from the peer for ${Math.round(idle / 1000)} s`)
      else if (ws.readyState === WebSocket.OPEN) ws.ping()
    }, Math.max(Math.floor(idle / 3), 10))
    timer.unref()
    ws.once('close', () => clearInterval(timer))
  }

  /** Raw WebSocket is ready on `open`; SockJS waits for its `o` frame. */
  protected onDialStarted(_ws: WebSocket, _ready: (err?: Error) => void): void {}

  protected lost(reason: string): void {
    if (this.closedByUs) return
    this.closedByUs = true
    this.ws?.terminate()
    this.events.close(reason)
  }

  close(): void {
    if (this.closedByUs) return
    this.closedByUs = true
    const ws = this.ws
    if (ws === null) return
    if (ws.readyState === WebSocket.CONNECTING) {
      ws.terminate()
      return
    }
    ws.close(1000)
    // A peer that never answers the close handshake must not keep the socket alive.
    setTimeout(() => ws.terminate(), 2000).unref()
  }
}

/** Raw WebSocket: one dnode message per text message (kite.js's default; our server on the prefix). */
export class RawWebSocketTransport extends WebSocketTransport {
  protected target(): URL {
    return toWebSocketURL(this.url)
  }

  protected override onDialStarted(ws: WebSocket, ready: (err?: Error) => void): void {
    ws.once('open', () => ready())
  }

  protected onText(text: string): void {
    this.events.message(text)
  }

  send(text: string): void {
    if (this.ws?.readyState !== WebSocket.OPEN) throw kiteError('KITE_ERR_TRANSPORT_NOT_OPEN', 'the WebSocket')
    corkUntilTickEnd(this.ws)
    this.ws.send(text)
    this.gate?.check()
  }
}

/** SockJS over WebSocket, as the G client speaks it; outgoing messages of one turn go in one array. */
export class SockjsWebSocketTransport extends WebSocketTransport {
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

  // Flushed at the end of the tick, as the raw transport uncorks: the calls a caller starts
  // together leave in one frame, and a lone call waits for no turn of the event loop.
  private readonly batcher = new MessageBatcher((batch) => {
    if (this.ws?.readyState !== WebSocket.OPEN) return
    this.ws.send(JSON.stringify(batch))
    this.gate?.check()
  }, endOfTick)

  send(text: string): void {
    if (this.ws?.readyState !== WebSocket.OPEN) throw kiteError('KITE_ERR_TRANSPORT_NOT_OPEN', 'the WebSocket')
    this.batcher.push(text)
  }
}

/**
 * SockJS over WebSocket to an exact URL (`…/<server>/<session>/websocket?token=…`):
 * the private side of a tunnel (spec §12.1), where the kite dials the URL the
 * tunnel proxy gave and then serves its session over it.
 */
export class SockjsTunnelTransport extends SockjsWebSocketTransport {
  protected override target(): URL {
    return toWebSocketURL(this.url)
  }
}
