import type { Server as HttpServer } from 'node:http'
import type { Socket } from 'node:net'
import { Server as TlsServer } from 'node:tls'

const kTimer = Symbol('kite.handshakeTimer')

type TimedSocket = Socket & { [kTimer]?: NodeJS.Timeout }

/**
 * Drops TCP (or TLS) connections whose first HTTP request, or WebSocket
 * upgrade, has not fully arrived within `timeoutMs` (a peer that opens a
 * socket and sends nothing, or its headers a byte at a time). One timer per
 * new connection, cleared by its first request. Node's own `headersTimeout`
 * is checked only every `connectionsCheckingInterval` (30 s by default) and
 * belongs to the app, so the kite keeps its own bound. Returns a function
 * that stops guarding.
 */
export function guardHandshakes(server: HttpServer, timeoutMs: number, onDrop: (remote: string) => void): () => void {
  const event = server instanceof TlsServer ? 'secureConnection' : 'connection'
  const onConnection = (socket: TimedSocket): void => {
    const timer = setTimeout(() => {
      delete socket[kTimer]
      onDrop(socket.remoteAddress ?? '')
      socket.destroy()
    }, timeoutMs)
    timer.unref()
    socket[kTimer] = timer
    socket.once('close', () => clearTimeout(timer))
  }
  const onRequest = (req: { socket: TimedSocket }): void => {
    const timer = req.socket[kTimer]
    if (timer === undefined) return
    clearTimeout(timer)
    delete req.socket[kTimer]
  }
  server.on(event, onConnection)
  server.on('request', onRequest)
  server.on('upgrade', onRequest)
  return () => {
    server.off(event, onConnection)
    server.off('request', onRequest)
    server.off('upgrade', onRequest)
  }
}

