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

/** TLS settings of https:// and wss:// kites (the server's CA, a client certificate). */
export interface ClientTlsOptions {
  /** CA certificate(s) (PEM) to trust instead of the system ones. */
  ca?: string | Buffer | Array<string | Buffer>
  /** Client certificate (PEM), for servers that ask for one. */
  cert?: string | Buffer
  /** The client certificate's private key (PEM). */
  key?: string | Buffer
  /** Refuse servers whose certificate does not verify. Default true. */
  rejectUnauthorized?: boolean
  /** Server name for SNI and the certificate check, when it differs from the URL's host. */
  servername?: string
}

export interface TransportOptions {
  /** TLS settings for https/wss URLs. */
  tls?: ClientTlsOptions
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
