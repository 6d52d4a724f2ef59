import { kiteError } from '../errors.js'
import type { MethodTable } from './dispatch.js'
import type { KiteRequest } from './request.js'

/** Shortest heartbeat interval a peer may ask for, so that no peer can make us flood it. */
export const MIN_HEARTBEAT_SECONDS = 1
/** Longest one (a day); beyond 2^31 ms Node would fire every millisecond. */
export const MAX_HEARTBEAT_SECONDS = 86400

function argumentError(message: string): Error {
  return kiteError('KITE_ERR_ARGUMENT_INVALID', message)
}

/** `kite.ping`: answers "pong"; needs no credentials. */
export function addPing(table: MethodTable): void {
  table.handle('kite.ping', () => 'pong').disableAuthentication()
}

/**
 * `kite.heartbeat [seconds, ping]`: calls `ping` now and every `seconds` on
 * this connection (G calls it once at once too). One heartbeat per
 * connection; a new request replaces the old one; it stops on disconnect.
 */
export function heartbeat(req: KiteRequest): null {
  const [seconds, ping] = req.args
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) throw argumentError('heartbeat interval must be a positive number of seconds')
  if (typeof ping !== 'function') throw argumentError('heartbeat needs a ping callback')
  const ms = Math.min(Math.max(seconds, MIN_HEARTBEAT_SECONDS), MAX_HEARTBEAT_SECONDS) * 1000
  req.connection.setHeartbeat(ms, () => {
    ;(ping as () => unknown)()
  })
  return null
}

/** `kite.log [message]`: logs "<caller name>: <message>" at info. */
export function log(req: KiteRequest): null {
  const [message] = req.args
  if (typeof message !== 'string') throw argumentError('kite.log needs a string')
  req.connection.log.info({ caller: req.kite.name, username: req.username }, `${req.kite.name}: ${message}`)
  return null
}

/** Registers the built-ins every kite has (the terminal ones are `addTerminalBuiltins` in `./terminal.js`). */
export function addBuiltins(table: MethodTable): void {
  addPing(table)
  table.handle('kite.heartbeat', heartbeat)
  table.handle('kite.log', log)
}
