/**
 * `fastify-kite/client`: KiteClient and its types only. Importing it loads
 * neither Fastify, nor pino, nor a storage driver: `ws` and the wire core.
 */
export { KiteClient, Backoff } from './lib/client/index.js'
export type { KiteClientOptions, KiteClientEvents, CallOptions, BackoffOptions, TransportName } from './lib/client/index.js'
export { KitePool, KitePoolError, kitePool } from './lib/client/index.js'
export type { KitePoolOptions, PoolCallOptions, PoolStats, StrategyName, StandalonePoolOptions } from './lib/client/index.js'
export { KiteError, KiteErrorCodes, WireErrorTypes } from './lib/errors.js'
export type { KiteErrorCode, WireError, WireErrorType } from './lib/errors.js'
export type { KiteRequest, KiteMethod, KiteHandler } from './lib/methods/index.js'
export type { KiteIdentity, KiteAuth } from './lib/protocol/index.js'
export type { DnodeLimits } from './lib/dnode/index.js'
