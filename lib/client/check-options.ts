import type { Logger } from 'pino'
import type { OptionChecker } from '../options.js'
import type { KiteAuth } from '../protocol/envelope.js'

/**
 * The KiteClient options checked only for their type (the constructor checks
 * those it resolves itself): timeouts, reconnect, kiteHome, maxCallbacksHeld,
 * logger, tls, auth. The browser bundle has a stand-in (check-options.browser.ts).
 */
export function checkClientOptions(c: OptionChecker): void {
  c.number('connectTimeout', 15000, { min: 1 })
  c.number('timeout', 15000)
  c.number('idleTimeout', 60000)
  c.boolean('reconnect', false)
  c.string('kiteHome', undefined)
  c.number('maxCallbacksHeld', 100000, { integer: true, min: 1 })
  const logger = c.raw('logger')
  if (logger !== undefined && (logger === null || typeof (logger as Logger).child !== 'function')) c.fail('logger', 'must be a pino logger')
  const tls = c.object('tls')
  const pem = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v)
  if (tls.ca !== undefined && !pem(tls.ca) && !(Array.isArray(tls.ca) && tls.ca.every(pem))) c.fail('tls.ca', 'must be PEM text, a Buffer, or an array of them')
  for (const f of ['cert', 'key'] as const) if (tls[f] !== undefined && !pem(tls[f])) c.fail(`tls.${f}`, 'must be PEM text or a Buffer')
  if (tls.rejectUnauthorized !== undefined && typeof tls.rejectUnauthorized !== 'boolean') c.fail('tls.rejectUnauthorized', 'must be true or false')
  if (tls.servername !== undefined && typeof tls.servername !== 'string') c.fail('tls.servername', 'must be a string')
  const auth = c.raw('auth')
  if (auth !== undefined && auth !== null && (typeof auth !== 'object' || typeof (auth as KiteAuth).type !== 'string' || ((auth as KiteAuth).key !== undefined && typeof (auth as KiteAuth).key !== 'string'))) c.fail('auth', 'must be { type, key } with strings')
}
