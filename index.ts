/**
 * fastify-kite: the kite micro-service framework as Fastify plugins.
 *
 * - `kiteServer`: makes a Fastify app a kite (methods, handlers, SockJS and raw WebSocket).
 * - `KiteClient`: calls any kite (ours, Go kites, kite.js) over SockJS, XHR polling or raw WebSocket.
 */
export { kiteServer, Kite } from './plugins/kite-server/index.js'
export type { KiteServerOptions, KiteServerEvents } from './plugins/kite-server/index.js'
export { KiteClient, Backoff } from './lib/client/index.js'
export type { KiteClientOptions, KiteClientEvents, CallOptions, BackoffOptions, TransportName } from './lib/client/index.js'
export { KiteError, KiteErrorCodes, WireErrorTypes, kiteError, toWire, fromWire } from './lib/errors.js'
export type { KiteErrorCode, WireError, WireErrorType } from './lib/errors.js'
export { KiteConnection } from './lib/connection/index.js'
export type { TellOptions } from './lib/connection/index.js'
export { KiteRequest, KiteMethod, MethodTable } from './lib/methods/index.js'
export type { KiteHandler, FinalHandler, Outcome, MethodHandling, Authenticator, AuthContext, AuthResult, ThrottleOptions } from './lib/methods/index.js'
export { kiteToString, kiteFromString, validateKite } from './lib/protocol/index.js'
export type { KiteIdentity, KiteAuth, CallEnvelope, KiteResponse } from './lib/protocol/index.js'
export { defaultDnodeLimits } from './lib/dnode/index.js'
export type { DnodeLimits } from './lib/dnode/index.js'
export { kiteAuth } from './plugins/kite-auth/index.js'
export type { KiteAuthOptions, TrustedKontrolKey } from './plugins/kite-auth/index.js'
export { kiteHome, kiteKeyPath, readKiteKey, findKiteKey, writeKiteKey, decodeKiteKey, decodeJwt } from './lib/kitekey.js'
export type { KiteKeyClaims } from './lib/kitekey.js'
export { loadConfig, fromEnv, fromKiteKey, parseGoDuration, defaultConfig } from './lib/config.js'
export type { KiteConfig, KiteLogLevel, LoadConfigOptions } from './lib/config.js'
