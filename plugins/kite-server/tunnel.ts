import WebSocket from 'ws'
import { SockjsTunnelTransport } from '../../lib/client/transports/websocket.js'
import { parseServerFrame } from '../../lib/client/transports/sockjs-frames.js'
import { soon } from '../../lib/platform.js'
import { wsCloseCode } from './transports/sockjs-frames.js'

/** Most bytes of a WebSocket close reason (RFC 6455: 125 bytes of payload, 2 of them the code). */
const MAX_REASON_BYTES = 123

/** A close reason cut to what a WebSocket close frame carries (whole characters only). */
export function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_REASON_BYTES) return reason
  let cut = reason.slice(0, MAX_REASON_BYTES)
  while (Buffer.byteLength(cut) > MAX_REASON_BYTES) cut = cut.slice(0, -1)
  return cut
}

/**
 * The kite's end of a tunnel (spec §12.1): SockJS over the WebSocket it
 * dialed. When the kite closes the session, the WebSocket closes with the
 * kite's own code and reason (1008 after too many failed authentications,
 * 1001 when the kite shuts down…), which the tunnel proxy passes on to the
 * public client. The close waits for this turn's messages (the answers
 * sent just before it) to be written first. The proxy's close frame
 * (`c[code,"reason"]`: the public client's close, passed on) is kept in
 * `closeCode`/`closeReason` for the kite's connection.
 */
export class KiteTunnelTransport extends SockjsTunnelTransport {
  closeCode: number | undefined
  closeReason: string | undefined

  protected override onText(text: string, ready: (err?: Error) => void): void {
    if (text.startsWith('c')) {
      const frame = parseServerFrame(text)
      if (frame.kind === 'close') {
        this.closeCode = frame.code
        this.closeReason = frame.reason
      }
    }
    super.onText(text, ready)
  }

  closeWith(code: number, reason: string): void {
    soon(() => {
      const ws = this.ws
      if (ws !== null && ws.readyState === WebSocket.OPEN) ws.close(wsCloseCode(code), closeReason(reason))
      this.close()
    })
  }
}
