/**
 * `fastify-kite/browser`: KiteClient for web pages, built by esbuild into one
 * ES module (`dist/browser/kite.js`). The same client as `fastify-kite/client`,
 * over the page's WebSocket and fetch: SockJS over WebSocket, SockJS XHR
 * polling, raw WebSocket; callbacks both ways; token auth.
 */
export { KiteClient, Backoff } from '../client/index.js'
export type { KiteClientOptions, KiteClientEvents, CallOptions, BackoffOptions, TransportName } from '../client/index.js'
export { KiteError, KiteErrorCodes, WireErrorTypes } from '../errors.js'
export type { KiteErrorCode, WireError, WireErrorType } from '../errors.js'
export type { KiteRequest, KiteHandler } from '../methods/index.js'
export type { KiteIdentity, KiteAuth } from '../protocol/index.js'
