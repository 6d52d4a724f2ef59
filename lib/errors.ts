/**
 * One table of every error this project raises. Each entry has a stable
 * `KITE_ERR_<AREA>_<WHAT>` code, the wire `type` peers see (spec §3.4) and a
 * message. `test/lib/errors.test.ts` checks this table against the README.
 * The entries only Node code raises (plugins, the CLI, files) sit in
 * errors-node.ts, which the browser bundle swaps for an empty table.
 */

import { NodeErrorCodes } from './errors-node.js'

/** Error `type` strings that travel on the wire (spec §3.4). */
export const WireErrorTypes = [
  'methodNotFound',
  'authenticationError',
  'argumentError',
  'genericError',
  'requestLimitError',
  'timeout',
  'sendError',
  'disconnect',
  'invalidResponse',
] as const

export type WireErrorType = (typeof WireErrorTypes)[number]

/** The entries any code may raise, the browser client's included. */
const CoreErrorCodes = {
  KITE_ERR_METHOD_NOT_FOUND: { type: 'methodNotFound', message: 'Method not found: %s' },
  KITE_ERR_AUTH_MISSING: { type: 'authenticationError', message: 'No authentication information is provided' },
  KITE_ERR_AUTH_UNKNOWN_TYPE: { type: 'authenticationError', message: 'Unknown authentication type: %s' },
  KITE_ERR_AUTH_FAILED: { type: 'authenticationError', message: '%s: %s' },
  KITE_ERR_ARGUMENT_INVALID: { type: 'argumentError', message: '%s' },
  KITE_ERR_ENVELOPE_INVALID: { type: 'argumentError', message: 'Invalid request envelope: %s' },
  KITE_ERR_HANDLER_FAILED: { type: 'genericError', message: '%s' },
  KITE_ERR_RESULT_INVALID: { type: 'genericError', message: 'result of %s does not match its schema: %s' },
  KITE_ERR_SERVER_CLOSING: { type: 'genericError', message: 'Kite is shutting down' },
  KITE_ERR_REQUEST_LIMIT: { type: 'requestLimitError', message: 'The maximum request rate is exceeded.' },
  KITE_ERR_CONCURRENCY_LIMIT: { type: 'requestLimitError', message: 'Too many calls in flight on this connection (limit %s)' },
  KITE_ERR_CALL_TIMEOUT: { type: 'timeout', message: 'No response to "%s" method in %sms' },
  KITE_ERR_CONNECT_TIMEOUT: { type: 'timeout', message: 'Could not connect to %s in %sms' },
  KITE_ERR_SEND_CLOSED: { type: 'sendError', message: "can't send, client is closed" },
  KITE_ERR_SEND_NOT_CONNECTED: { type: 'sendError', message: "can't send, session is not established yet" },
  KITE_ERR_SEND_FAILED: { type: 'sendError', message: 'send failed: %s' },
  KITE_ERR_CONNECT_FAILED: { type: 'sendError', message: 'cannot connect to %s: %s' },
  KITE_ERR_DISCONNECTED: { type: 'disconnect', message: 'Remote kite has disconnected' },
  KITE_ERR_RESPONSE_INVALID: { type: 'invalidResponse', message: 'Server has sent invalid response arguments' },
  KITE_ERR_CALLBACK_LIMIT: { type: 'sendError', message: 'too many callbacks held for the peer (limit %s, option maxCallbacksHeld); they are freed when the connection closes' },
  KITE_ERR_CONFIG_INVALID: { type: 'genericError', message: 'invalid configuration: %s' },
  // Issue 14 (one place for each thing): errors that were plain Error/TypeError, each now with its
  // code (those only Node code raises are in errors-node.ts). Their messages are the texts they had,
  // so nothing a peer or a user reads changes; an expired token keeps the wire message
  // `<authType>: token is expired` and says so by its code too.
  KITE_ERR_AUTH_TOKEN_EXPIRED: { type: 'authenticationError', message: '%s: token is expired' },
  KITE_ERR_METHOD_SETUP: { type: 'genericError', message: '%s' },
  KITE_ERR_IDENTITY_INVALID: { type: 'genericError', message: '%s' },
  KITE_ERR_KITEKEY_BROWSER: { type: 'genericError', message: "a browser has no kite.key: give the client { auth: { type: 'token', key } }" },
  KITE_ERR_UNHANDLED_ERROR_EVENT: { type: 'genericError', message: 'unhandled error event: %s' },
  // The dnode codec and the client transports (lib/dnode, lib/client/transports); recognised by code, never by message.
  KITE_ERR_DNODE_INVALID: { type: 'argumentError', message: '%s' },
  KITE_ERR_SEND_TOO_DEEP: { type: 'sendError', message: 'outgoing data is nested deeper than %s levels (or cyclic)' },
  KITE_ERR_TRANSPORT_UPGRADE_REFUSED: { type: 'sendError', message: 'Unexpected server response: %s' },
  KITE_ERR_TRANSPORT_NOT_OPEN: { type: 'sendError', message: '%s is not open' },
  KITE_ERR_TRANSPORT_SOCKJS_OPEN: { type: 'sendError', message: 'SockJS session did not open: %s' },
  KITE_ERR_TRANSPORT_FETCH: { type: 'sendError', message: 'fetch failed: %s' },
} as const satisfies Record<string, { type: WireErrorType; message: string }>

/** The error table: every code with its wire type and message; the Node-only entries come last. */
export const KiteErrorCodes = { ...CoreErrorCodes, ...NodeErrorCodes }

export type KiteErrorCode = keyof typeof KiteErrorCodes

/** The error object as it travels on the wire (spec §3.3). */
export interface WireError {
  type: string
  message: string
  code: string
  id: string
}

/**
 * An error from a kite: raised locally (a timeout, a disconnect) or received
 * from a peer. `type` is the wire type; `code` is our `KITE_ERR_*` code for
 * local errors and whatever the peer sent for remote ones.
 */
export class KiteError extends Error {
  override name = 'KiteError'
  /** The wire error type, e.g. `methodNotFound` or `timeout`. */
  readonly type: string
  /** `KITE_ERR_*` for errors raised here; the peer's free-form code for remote ones. */
  readonly code: string
  /** The request id (16 hex characters) when the error was raised while handling a request. */
  id: string
  /** True when the error is a peer's answer (read from the wire), false when raised here. */
  remote = false

  constructor(type: string, message: string, code = '', id = '') {
    super(message)
    this.type = type
    this.code = code
    this.id = id
  }

  /** The G kite's `Error()` text: `type: message (id)`. */
  override toString(): string {
    const head = this.type === '' || this.type === 'genericError' ? this.message : `${this.type}: ${this.message}`
    return this.id === '' ? head : `${head} (${this.id})`
  }
}

function format(template: string, args: readonly unknown[]): string {
  let i = 0
  return template.replace(/%s/g, () => String(args[i++] ?? ''))
}

/** Builds the KiteError for a table code, filling the `%s` slots in order. */
export function kiteError(code: KiteErrorCode, ...args: unknown[]): KiteError {
  const entry = KiteErrorCodes[code]
  return new KiteError(entry.type, format(entry.message, args), code)
}

/**
 * A mistake in how the API was called (a programming error, raised at setup): a TypeError, so
 * `instanceof TypeError` keeps working, carrying its table code.
 */
export class KiteUsageError extends TypeError {
  readonly code: KiteErrorCode

  constructor(code: KiteErrorCode, message: string) {
    super(message)
    this.code = code
  }
}

/** Builds the KiteUsageError for a table code, filling the `%s` slots in order. */
export function usageError(code: KiteErrorCode, ...args: unknown[]): KiteUsageError {
  return new KiteUsageError(code, format(KiteErrorCodes[code].message, args))
}

/** The `code` of an error raised here (KiteError, KiteUsageError, option errors), or ''. */
export function errorCode(err: unknown): string {
  const code = err !== null && typeof err === 'object' ? (err as { code?: unknown }).code : undefined
  return typeof code === 'string' ? code : ''
}

/**
 * True when a call was refused because its token expired (or, as Go says after Kontrol's keys
 * rotated, its signature no longer verifies): time to fetch a new token (spec §5.4, §5.9).
 * Ours say so by code. A Go kite sends the same type, `authenticationError`, for every
 * authentication failure and no code (and a custom authenticator here may throw a plain
 * `Error('token is expired')`), so for a peer's answer this is the one place that reads the
 * message text (`token: token is expired by 1m5s`, spec §4).
 */
export function isTokenExpired(err: unknown): boolean {
  if (!(err instanceof KiteError) || err.type !== 'authenticationError') return false
  if (err.code === 'KITE_ERR_AUTH_TOKEN_EXPIRED') return true
  return err.remote && err.message.includes('token is expired')
}

/**
 * True when Kontrol answered that no kite matches (`getKites`, `getToken`). Ours say so by code;
 * Go's Kontrol sends `genericError` with the text `no kites found` and no code (spec §6.5), the
 * only way to tell it from other failures.
 */
export function isNoKitesFound(err: unknown): boolean {
  if (!(err instanceof KiteError)) return false
  if (err.code === 'KITE_ERR_KONTROL_NO_KITES') return true
  return err.remote && err.message.includes(KiteErrorCodes.KITE_ERR_KONTROL_NO_KITES.message)
}

/**
 * The wire form of any thrown value: KiteErrors keep their type and code;
 * anything else is a genericError with code `KITE_ERR_HANDLER_FAILED`, or
 * the error's own `KITE_ERR_*` code when it carries one.
 */
export function toWire(err: unknown, requestId = ''): WireError {
  if (err instanceof KiteError) {
    return { type: err.type, message: err.message, code: err.code || 'KITE_ERR_HANDLER_FAILED', id: err.id || requestId }
  }
  if (err instanceof Error) {
    const own = (err as { code?: unknown }).code
    const code = typeof own === 'string' && own.startsWith('KITE_ERR_') ? own : 'KITE_ERR_HANDLER_FAILED'
    return { type: 'genericError', message: err.message, code, id: requestId }
  }
  return { type: 'genericError', message: String(err), code: 'KITE_ERR_HANDLER_FAILED', id: requestId }
}

/** Turns an error object received from a peer into a KiteError. Tolerates J's `{}` errors. */
export function fromWire(value: unknown): KiteError {
  if (value !== null && typeof value === 'object') {
    const v = value as Record<string, unknown>
    const type = typeof v.type === 'string' && v.type !== '' ? v.type : 'genericError'
    const message = typeof v.message === 'string' ? v.message : 'unknown error from remote kite'
    const code = typeof v.code === 'string' ? v.code : ''
    const id = typeof v.id === 'string' ? v.id : ''
    const err = new KiteError(type, message, code, id)
    err.remote = true
    return err
  }
  const err = new KiteError('genericError', typeof value === 'string' ? value : 'unknown error from remote kite')
  err.remote = true
  return err
}
