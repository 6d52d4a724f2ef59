/** The browser's side of `kitekey.ts`: a page has no kite.key file; pass `auth: { type: 'token', key }` instead. */
import { kiteError } from './errors.js'

export function kiteKeyPath(_env?: Record<string, string | undefined>): string {
  return ''
}

export function readKiteKey(_path?: string): Promise<string> {
  return Promise.reject(kiteError('KITE_ERR_KITEKEY_BROWSER'))
}
