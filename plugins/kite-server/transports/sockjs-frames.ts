/** SockJS frames (spec §1.3). */
export const OPEN_FRAME = 'o'
export const HEARTBEAT_FRAME = 'h'

/** `a[...]`: messages, each a JSON string holding one dnode message. */
export function messagesFrame(messages: readonly string[]): string {
  return `a${JSON.stringify(messages)}`
}

/** `c[code,"reason"]`. */
export function closeFrame(code: number, reason: string): string {
  return `c[${code},${JSON.stringify(reason)}]`
}

/**
 * Reads what a SockJS client sends: a JSON array of strings. Returns null for
 * anything else (sockjs-go closes the connection then; so do we).
 */
export function parseClientPayload(text: string): string[] | null {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (!Array.isArray(value)) return null
  for (const item of value) if (typeof item !== 'string') return null
  return value as string[]
}

/** A WebSocket close code a peer may send: 1000, 1001, 1007–1011, or 3000–4999. */
export function wsCloseCode(code: number): number {
  if (code === 1000 || code === 1001 || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999)) return code
  return 1000
}
