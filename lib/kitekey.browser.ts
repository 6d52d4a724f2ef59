/** The browser's side of `kitekey.ts`: a page has no kite.key file; pass `auth: { type: 'token', key }` instead. */

export function kiteKeyPath(_env?: Record<string, string | undefined>): string {
  return ''
}

export function readKiteKey(_path?: string): Promise<string> {
  return Promise.reject(new Error("a browser has no kite.key: give the client { auth: { type: 'token', key } }"))
}
