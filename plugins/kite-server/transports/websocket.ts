import type { FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { ConnectionSink } from '../../../lib/connection/connection.js'
import { corkUntilTickEnd } from '../../../lib/dnode/cork.js'
import { MessageBatcher } from '../../../lib/dnode/batcher.js'
import type { Kite } from '../kite.js'
import { closeFrame, messagesFrame, OPEN_FRAME, parseClientPayload, wsCloseCode } from './sockjs-frames.js'

/** A WebSocket the liveness sweep watches. */
export interface WatchedSocket {
  ws: WebSocket
  alive: boolean
  /** Sends the SockJS `h` frame too. */
  sockjs: boolean
}

/** Writes SockJS frames on a WebSocket, batching messages produced in one turn of the event loop into one `a[...]`. */
class SockjsWsSink implements ConnectionSink {
  private readonly batcher: MessageBatcher

  constructor(private readonly ws: WebSocket) {
    this.batcher = new MessageBatcher((batch) => {
      if (ws.readyState === ws.OPEN) ws.send(messagesFrame(batch))
    })
  }

  send(text: string): void {
    this.batcher.push(text)
  }

  close(code: number, reason: string): void {
    this.batcher.flush()
    if (this.ws.readyState === this.ws.OPEN) {
      this.ws.send(closeFrame(code, reason))
      this.ws.close(wsCloseCode(code), reason)
    }
  }
}

class RawWsSink implements ConnectionSink {
  constructor(private readonly ws: WebSocket) {}

  send(text: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return
    corkUntilTickEnd(this.ws)
    this.ws.send(text)
  }

  close(code: number, reason: string): void {
    this.ws.close(wsCloseCode(code), reason)
  }
}

/**
 * Serves one WebSocket: raw (one dnode message per text message) or SockJS
 * framed (`o`, `a[...]`, `h`, `c[...]`; the client sends arrays of strings).
 */
export function serveWebSocket(kite: Kite, watched: Set<WatchedSocket>, ws: WebSocket, request: FastifyRequest, sockjs: boolean): void {
  const transport = sockjs ? 'sockjs-websocket' : 'websocket'
  const conn = kite.accept({ sink: sockjs ? new SockjsWsSink(ws) : new RawWsSink(ws), transport, remoteAddress: request.ip })
  if (conn === null) {
    if (sockjs) ws.send(closeFrame(3000, 'Go away!'))
    ws.close(1001, 'server shutting down')
    return
  }
  if (sockjs) ws.send(OPEN_FRAME)
  const entry: WatchedSocket = { ws, alive: true, sockjs }
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
      conn.log.warn('closing connection: SockJS payload is not a JSON array of strings')
      conn.close(1007, 'Broken JSON encoding.')
      return
    }
    for (const m of messages) conn.receive(m)
  })
  ws.on('close', () => {
    watched.delete(entry)
    conn.transportClosed()
  })
  ws.on('error', (err) => conn.log.debug({ err }, 'WebSocket error'))
}

/**
 * One timer for all WebSockets of a kite: every heartbeat period it sends a
 * ping (and a SockJS `h`), and ends sockets that did not answer the last one,
 * so half-open connections do not linger.
 */
export function startLivenessSweep(watched: Set<WatchedSocket>, periodMs: number): NodeJS.Timeout {
  const timer = setInterval(() => {
    for (const entry of watched) {
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
