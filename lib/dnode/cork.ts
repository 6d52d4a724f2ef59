import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'

const corked = new WeakSet<Socket>()

function uncork(socket: Socket): void {
  corked.delete(socket)
  socket.uncork()
}

/**
 * Holds the WebSocket's TCP writes until the current tick ends, so that the
 * answers produced together (32 calls in flight resolve in one microtask run)
 * leave in one writev instead of one syscall each.
 */
export function corkUntilTickEnd(ws: WebSocket): void {
  const socket = (ws as unknown as { _socket?: Socket | null })._socket
  if (socket === null || socket === undefined || corked.has(socket)) return
  corked.add(socket)
  socket.cork()
  process.nextTick(uncork, socket)
}
