import type { KiteConnection } from '../connection/connection.js'
import type { KiteRequest } from './request.js'

/** Browser stand-in for call-log.ts (the bundle's size budget): a page keeps no call log. */
export function callLogStart(_conn: KiteConnection): number {
  return 0
}

export function logCall(_req: KiteRequest, _error: unknown): void {}
