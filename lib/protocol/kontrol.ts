import type { KiteAuth } from './envelope.js'
import type { KiteIdentity } from './kite.js'

/** Kontrol's query: the 7 kite fields, empty ones unconstrained; `version` may be a constraint (spec §6.2). */
export type KontrolQuery = Partial<KiteIdentity>

/** `register` arguments (spec §6.3): WebSocket sends only `url`; HTTP sends all three. */
export interface RegisterArgs {
  url: string
  kite?: KiteIdentity
  auth?: KiteAuth
}

/** `register` result: `heartbeatInterval` is 0 over WebSocket (Kontrol drives heartbeats) and the interval in seconds over HTTP. */
export interface RegisterResult {
  url: string
  heartbeatInterval: number
  err?: string
  publicKey?: string
  kiteKey?: string
}

/** `getKites` arguments; `watchCallback` receives REGISTER/DEREGISTER events for the query. */
export interface GetKitesArgs {
  query: KontrolQuery
  watchCallback?: ((event: KiteEventMessage) => void) | null
  who?: unknown
}

/** One kite found, with a token to call it. */
export interface KiteWithToken {
  kite: KiteIdentity
  url: string
  keyId?: string
  token: string
}

export interface GetKitesResult {
  kites: KiteWithToken[]
}

/** A watch event sent to a `watchCallback`. */
export interface KiteEventMessage {
  action: 'REGISTER' | 'DEREGISTER'
  kite: KiteIdentity
  url?: string
  token?: string
}

/** `getToken` arguments: the query fields flattened, plus `force`. */
export type GetTokenArgs = KontrolQuery & { force?: boolean }
