import { KiteError } from '../errors.js'
import type { KiteConnection } from '../connection/connection.js'
import type { KiteRequest } from './request.js'

/** When a call arrives: performance.now() when the call log is on (the connection's logger at info or below), 0 otherwise. */
export function callLogStart(conn: KiteConnection): number {
  return (conn.log as { levelVal?: number }).levelVal! <= 30 ? performance.now() : 0
}

/** One info line per answered call: method, caller, duration and outcome (`ok` or the error type), with the request id. */
export function logCall(req: KiteRequest, error: unknown): void {
  const ms = Math.round((performance.now() - req.startedAt) * 1000) / 1000
  const outcome = error === null ? 'ok' : error instanceof KiteError ? error.type : 'genericError'
  req.connection.log.info({ reqId: req.id, method: req.method, caller: req.username, callerKite: req.kite.name, responseTime: ms, outcome }, 'kite call')
}
