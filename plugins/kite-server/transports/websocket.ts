import type { FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { ConnectionSink } from '../../../lib/connection/connection.js'
import { WriteGate } from '../../../lib/connection/backpressure.js'
import { corkUntilTickEnd } from '../../../lib/transport/cork.js'
import { MessageBatcher } from '../../../lib/transport/batcher.js'
import type { SessionEndpoint, SessionHost } from '../kite.js'
import { closeFrame, messagesFrame, OPEN_FRAME, parseClientPayload, wsCloseCode } from './sockjs-frames.js'

/** A WebSocket the liveness sweep watches. */
export interface WatchedSocket {
  ws: WebSocket
  alive: boolean
  /** Sends the SockJS `h` frame too. */
  sockjs: boolean
  /** Write backpressure: while it has reading paused, the socket is neither pinged nor judged by pongs. */
  gate: WriteGate
}

/**
 * How long a socket the server closed (for any reason: shutdown, not reading,
 * bad input) may linger for the peer's close frame before it is destroyed: a
 * peer that never answers the close handshake (Go's kite client stops reading
 * and redials) must not keep its socket, nor hold app.close(), for ws's 30 s.
 */
const CLOSE_LINGER_MS = 1000

/** Starts the close handshake and destroys the socket if the peer has not completed it within the linger time. */
function closeThenDrop(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === ws.CLOSED) return
  // Already closing (e.g. by @fastify/websocket's own preClose): only the drop is left to arm.
  if (ws.readyState === ws.OPEN) ws.close(code, reason)
  setTimeout(() => ws.terminate(), CLOSE_LINGER_MS).unref()
}

interface GatedSink extends ConnectionSink {
  gate: WriteGate | null
}

/** Writes SockJS frames on a WebSocket, batching messages produced in one turn of the event loop into one `a[...]`. */
class SockjsWsSink implements GatedSink {
  private readonly batcher: MessageBatcher
  gate: WriteGate | null = null

  get bufferedBytes(): number {
    return this.ws.bufferedAmount
  }

  constructor(private readonly ws: WebSocket) {
    this.batcher = new MessageBatcher((batch) => {
      if (ws.readyState !== ws.OPEN) return
      ws.send(messagesFrame(batch))
      this.gate?.check()
    })
  }

  send(text: string): void {
    this.batcher.push(text)
  }

  close(code: number, reason: string): void {
    this.batcher.flush()
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(closeFrame(code, reason))
    closeThenDrop(this.ws, wsCloseCode(code), reason)
  }
}

class RawWsSink implements GatedSink {
  gate: WriteGate | null = null

  constructor(private readonly ws: WebSocket) {}

  get bufferedBytes(): number {
    return this.ws.bufferedAmount
  }

  send(text: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return
    corkUntilTickEnd(this.ws)
    this.ws.send(text)
    this.gate?.check()
  }

  close(code: number, reason: string): void {
    closeThenDrop(this.ws, wsCloseCode(code), reason)
  }
}

/**
 * Serves one WebSocket: raw (one dnode message per text message) or SockJS
 * framed (`o`, `a[...]`, `h`, `c[...]`; the client sends arrays of strings).
 */
export function serveWebSocket(kite: SessionHost, watched: Set<WatchedSocket>, ws: WebSocket, request: FastifyRequest, sockjs: boolean): void {
  const transport = sockjs ? 'sockjs-websocket' : 'websocket'
  const sink: GatedSink = sockjs ? new SockjsWsSink(ws) : new RawWsSink(ws)
  const conn = kite.accept({ sink, transport, remoteAddress: request.ip, request })
  if (conn === null) {
    if (sockjs) ws.send(closeFrame(3000, 'Go away!'))
    closeThenDrop(ws, 1001, 'server shutting down')
    return
  }
  if (sockjs) ws.send(OPEN_FRAME)
  const gate = webSocketGate(kite, ws, conn)
  sink.gate = gate
  const entry: WatchedSocket = { ws, alive: true, sockjs, gate }
  watched.add(entry)
  ws.on('pong', () => {
    entry.alive = true
  })
  ws.on('message', (data, isBinary) => {
    entry.alive = true
    const text = Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.isBuffer(data) ? data.toString() : Buffer.from(data).toString()
    if (isBinary) conn.log.debug('binary WebSocket message taken as text')
    if (!sockjs) {
      conn.receive(text)
      return
    }
    const messages = parseClientPayload(text)
    if (messages === null) {
      conn.warnRemote({}, 'closing connection: SockJS payload is not a JSON array of strings')
      conn.close(1007, 'Broken JSON encoding.')
      return
    }
    for (const m of messages) conn.receive(m)
  })
  ws.on('close', (code, reason) => {
    watched.delete(entry)
    gate.dispose()
    conn.transportClosed(code, reason.toString())
  })
  ws.on('error', (err) => conn.log.debug({ err }, 'WebSocket error'))
}

/**
 * Pauses reading from a peer whose unsent bytes passed the limit, and closes
 * it (1008, and a SockJS close frame) when they stay above it for the grace
 * period: the socket is destroyed shortly after, since a peer that does not
 * read will not answer the close handshake either.
 */
function webSocketGate(kite: SessionHost, ws: WebSocket, conn: SessionEndpoint): WriteGate {
  const { backpressure } = kite.options
  return new WriteGate(backpressure, {
    queued: () => ws.bufferedAmount,
    pause: () => {
      conn.log.debug({ bufferedBytes: ws.bufferedAmount }, 'peer reads too slowly: reading from it paused')
      ws.pause()
    },
    resume: () => {
      conn.log.debug('peer caught up: reading from it again')
      ws.resume()
    },
    overflow: () => {
      conn.warnRemote({ bufferedBytes: ws.bufferedAmount, maxBufferedBytes: backpressure.maxBufferedBytes, graceMs: backpressure.graceMs }, 'closing connection: the peer does not read what it is sent')
      conn.close(1008, 'peer does not read: too much data queued')
    },
  }, kite.options.clock)
}

/**
 * One timer for all WebSockets of a kite: every heartbeat period it sends a
 * ping (and a SockJS `h`), and ends sockets that did not answer the last one,
 * so half-open connections do not linger.
 */
export function startLivenessSweep(watched: Set<WatchedSocket>, periodMs: number): NodeJS.Timeout {
  const timer = setInterval(() => {
    for (const entry of watched) {
      // A paused socket reads no pongs; the write gate decides its fate.
      if (entry.gate.paused) continue
      if (!entry.alive) {
        entry.ws.terminate()
        continue
      }
      entry.alive = false
      entry.ws.ping()
      if (entry.sockjs) entry.ws.send('h')
    }
  }, periodMs)
  timer.unref()
  return timer
}
