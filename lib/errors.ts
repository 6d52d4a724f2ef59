/**
 * One table of every error this project raises. Each entry has a stable
 * `KITE_ERR_<AREA>_<WHAT>` code, the wire `type` peers see (spec §3.4) and a
 * message. `test/errors.test.ts` checks this table against the README.
 */

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

export const KiteErrorCodes = {
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
  KITE_ERR_KITEKEY_MISSING: { type: 'genericError', message: 'no kite.key at %s' },
  KITE_ERR_KITEKEY_UNREADABLE: { type: 'genericError', message: 'cannot read kite.key at %s: %s' },
  KITE_ERR_KITEKEY_MALFORMED: { type: 'genericError', message: 'malformed kite.key: %s' },
  KITE_ERR_CONFIG_INVALID: { type: 'genericError', message: 'invalid configuration: %s' },
  KITE_ERR_KONTROL_ID_TAKEN: { type: 'genericError', message: 'kite id %s is registered by another user' },
  KITE_ERR_KONTROL_AUTH_TYPE: { type: 'genericError', message: 'Unexpected authentication type: %s' },
  KITE_ERR_KONTROL_INVALID: { type: 'genericError', message: '%s' },
  KITE_ERR_KONTROL_NO_KITES: { type: 'genericError', message: 'no kites found' },
  KITE_ERR_KONTROL_AMBIGUOUS: { type: 'genericError', message: 'query matches more than one kite' },
  KITE_ERR_KONTROL_NO_KEY: { type: 'genericError', message: 'no valid authentication key found' },
  KITE_ERR_KONTROL_STORAGE: { type: 'genericError', message: 'kontrol storage is unavailable: %s' },
  KITE_ERR_POOL_NO_KITES: { type: 'sendError', message: 'no kites found for %s' },
  KITE_ERR_POOL_UNAVAILABLE: { type: 'sendError', message: 'no kite could take "%s": %s' },
  // The dnode codec and the client transports (lib/dnode, lib/client/transports); recognised by code, never by message.
  KITE_ERR_DNODE_INVALID: { type: 'argumentError', message: '%s' },
  KITE_ERR_SEND_TOO_DEEP: { type: 'sendError', message: 'outgoing data is nested deeper than %s levels (or cyclic)' },
  KITE_ERR_TRANSPORT_UPGRADE_REFUSED: { type: 'sendError', message: 'Unexpected server response: %s' },
  KITE_ERR_TRANSPORT_NOT_OPEN: { type: 'sendError', message: '%s is not open' },
  KITE_ERR_TRANSPORT_CLOSED: { type: 'sendError', message: 'connection closed (%s)' },
  KITE_ERR_TRANSPORT_SOCKJS_OPEN: { type: 'sendError', message: 'SockJS session did not open: %s' },
  KITE_ERR_TRANSPORT_FETCH: { type: 'sendError', message: 'fetch failed: %s' },
} as const satisfies Record<string, { type: WireErrorType; message: string }>

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

/**
 * True when a call failed because its token expired (or was signed by a key
 * no longer trusted, which kites report the same way, spec §5.4): the caller
 * should fetch a new token. Go kites and kite.js send no code for it, only
 * the `authenticationError` type and a message mentioning `token is expired`
 * (spec §3.4), so that message is the wire's own signal here.
 */
export function isTokenExpired(err: KiteError): boolean {
  return err.type === 'authenticationError' && err.message.includes('token is expired')
}
