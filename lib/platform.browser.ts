/** The browser's side of `platform.ts` (see there): Web Crypto, no Buffer, no unref. */

const HEX: string[] = []
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'))

function hex(bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += HEX[b]
  return s
}

/** A v4 UUID; `crypto.randomUUID` exists only on secure (https, localhost) pages. */
export function randomUUID(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  const b = crypto.getRandomValues(new Uint8Array(16))
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80
  const h = hex(b)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** The page's host name, as a kite's `hostname` field. */
export function hostname(): string {
  return typeof location === 'object' && location.hostname !== '' ? location.hostname : 'browser'
}

export function randomId16(): string {
  return hex(crypto.getRandomValues(new Uint8Array(8)))
}

const encoder = new TextEncoder()

export function utf8Length(text: string): number {
  return encoder.encode(text).length
}

export function unref(_timer: unknown): void {}

export const soon = (fn: () => void): void => {
  setTimeout(fn, 0)
}
