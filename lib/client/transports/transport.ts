import type { BackpressureOptions } from '../../connection/backpressure.js'
/**
 * The client transports: SockJS over WebSocket, SockJS XHR polling, raw
 * WebSocket, and `auto` (SockJS over WebSocket, falling back to XHR polling
 * only when the server answers the upgrade with something other than 101, as
 * the Go client does).
 */
export type TransportName = 'sockjs' | 'websocket' | 'xhr-polling' | 'auto'

/** Callbacks a transport reports to. */
export interface TransportEvents {
  /** One dnode message arrived. */
  message(text: string): void
  /** The connection is gone (after it was open). */
  close(reason: string): void
}

/** One client connection over one transport. */
export interface ClientTransport {
  /** Opens the connection; resolves when the peer is ready for messages. */
  open(signal: AbortSignal): Promise<void>
  /** Sends one dnode message. */
  send(text: string): void
  /** Closes; `close` is not reported for a close asked for here. */
  close(): void
}

export interface TransportOptions {
  /** Most bytes accepted in one WebSocket message. */
  maxPayload: number
  /** A WebSocket that brings nothing (no frame, no pong) for this long is taken as dead; 0 never. */
  idleTimeoutMs: number
  /** Unsent bytes above which reading from the server pauses, and how long that may last before the connection is dropped. */
  backpressure: BackpressureOptions
}

const HEX = '0123456789abcdef'

function randomString(alphabet: string, length: number): string {
  let s = ''
  for (let i = 0; i < length; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)]
  return s
}

/** A SockJS server id (3 digits, 100–999) and session id (20 lowercase hex), as the G client makes them. */
export function sockjsSessionPath(): string {
  return `${String(100 + Math.floor(Math.random() * 900))}/${randomString(HEX, 20)}`
}

/** `base + "/" + rest`, without doubling the slash. */
export function joinPath(base: string, rest: string): string {
  return base.endsWith('/') ? base + rest : `${base}/${rest}`
}
