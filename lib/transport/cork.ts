import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'

/** Marks a socket corked until the end of the current tick (a flag on the socket: cheaper per write than a set lookup). */
const CORKED = Symbol('kite.corkedUntilTickEnd')

type Corkable = Socket & { [CORKED]?: boolean }

function uncork(socket: Corkable): void {
  socket[CORKED] = false
  socket.uncork()
}

/**
 * Holds the WebSocket's TCP writes until the current tick ends, so that the
 * messages produced together (32 calls in flight resolve in one microtask
 * run) leave in one writev instead of one syscall each. Used by the client's
 * and the server's WebSocket transports.
 */
export function corkUntilTickEnd(ws: WebSocket): void {
  const socket = (ws as unknown as { _socket?: Corkable | null })._socket
  if (socket === null || socket === undefined || socket[CORKED] === true) return
  socket[CORKED] = true
  socket.cork()
  process.nextTick(uncork, socket)
}
