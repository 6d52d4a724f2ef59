import { kiteError, type KiteError } from '../../errors.js'
import type { TransportEvents } from './transport.js'

/** What one SockJS frame from the server means to a client. */
export type ServerFrame =
  | { kind: 'open' }
  | { kind: 'heartbeat' }
  | { kind: 'messages'; messages: string[] }
  | { kind: 'close'; code: number; reason: string }
  | { kind: 'invalid'; reason: string }

/**
 * Reads one server frame (spec §1.3). An empty frame, `a[]` and unknown
 * letters are invalid, as in the G client.
 */
export function parseServerFrame(frame: string): ServerFrame {
  if (frame.length === 0) return { kind: 'invalid', reason: 'unexpected empty message' }
  const letter = frame[0]
  if (letter === 'o') return { kind: 'open' }
  if (letter === 'h') return { kind: 'heartbeat' }
  try {
    if (letter === 'a') {
      const messages: unknown = JSON.parse(frame.slice(1))
      if (!Array.isArray(messages) || messages.length === 0) return { kind: 'invalid', reason: 'no message' }
      if (!messages.every((m) => typeof m === 'string')) return { kind: 'invalid', reason: 'messages must be strings' }
      return { kind: 'messages', messages: messages as string[] }
    }
    if (letter === 'm') {
      const message: unknown = JSON.parse(frame.slice(1))
      return typeof message === 'string' ? { kind: 'messages', messages: [message] } : { kind: 'invalid', reason: 'message must be a string' }
    }
    if (letter === 'c') {
      const body: unknown = JSON.parse(frame.slice(1))
      const [code, reason] = Array.isArray(body) ? body : []
      return { kind: 'close', code: typeof code === 'number' ? code : 0, reason: typeof reason === 'string' ? reason : '' }
    }
  } catch {
    return { kind: 'invalid', reason: 'broken frame' }
  }
  return { kind: 'invalid', reason: 'invalid frame type' }
}

/** The error of a SockJS session whose first frame was not `o` (spec §1.3). */
export function sockjsOpenError(frame: ServerFrame): KiteError {
  return kiteError('KITE_ERR_TRANSPORT_SOCKJS_OPEN', frame.kind === 'close' ? `closed by server: code=${frame.code}, reason=${frame.reason}` : 'expected the open frame')
}

/**
 * One frame of an open SockJS session, for every client transport (WebSocket in Node and in the
 * browser, XHR polling): its messages go to `events`; returns why the session is lost (`c[…]`,
 * a broken frame), or null.
 */
export function deliverSockjsFrame(frame: ServerFrame, events: Pick<TransportEvents, 'message'>): string | null {
  if (frame.kind === 'messages') {
    for (const m of frame.messages) events.message(m)
    return null
  }
  if (frame.kind === 'close') return `closed by server: code=${frame.code}, reason=${frame.reason}`
  if (frame.kind === 'invalid') return frame.reason
  return null
}
