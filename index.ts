/**
 * fastify-kite: the kite micro-service framework as Fastify plugins.
 *
 * - `kiteServer`, `kiteAuth`, `kontrol`, `kontrolRegister`, `systemInfo`: the plugins.
 * - `KiteClient`: calls any kite (ours, Go kites, kite.js); also alone as `fastify-kite/client`,
 *   which loads neither Fastify nor a storage driver.
 * - `fastify-kite/testing`: a Kontrol and kite.keys for tests; `fastify-kite/browser`: the client for pages.
 */
export { kiteServer } from './plugins/kite-server/index.js'
export type { Kite, KiteServerOptions, KiteServerEvents } from './plugins/kite-server/index.js'
export { kiteAuth } from './plugins/kite-auth/index.js'
export type { KiteAuthOptions, TrustedKontrolKey } from './plugins/kite-auth/index.js'
export { kontrol } from './plugins/kontrol/index.js'
export type { KontrolOptions, KontrolDecorator, KontrolStorage, KiteRecord, KeyPairRecord, KiteEvent } from './plugins/kontrol/index.js'
export type { PostgresLayout, PostgresStorageOptions } from './plugins/kontrol/storage/index.js'
export { kontrolRegister } from './plugins/kontrol-register/index.js'
export type { KontrolRegisterOptions, KontrolRegisterDecorator } from './plugins/kontrol-register/index.js'
export { systemInfo } from './plugins/systeminfo/index.js'
export type { SystemInfo, SystemInfoOptions, ReadyCheck, LifecyclePhase, ReadinessState } from './plugins/systeminfo/index.js'
export { KiteClient, Backoff } from './lib/client/index.js'
export type { KiteClientOptions, KiteClientEvents, CallOptions, BackoffOptions, TransportName } from './lib/client/index.js'
export { KiteError, KiteErrorCodes, WireErrorTypes } from './lib/errors.js'
export type { KiteErrorCode, WireError, WireErrorType } from './lib/errors.js'
export type { KiteConnection, TellOptions } from './lib/connection/index.js'
export type { KiteRequest, KiteMethod, KiteHandler, FinalHandler, Outcome, MethodHandling, Authenticator, AuthContext, AuthResult, ThrottleOptions } from './lib/methods/index.js'
export type { KiteIdentity, KiteAuth, CallEnvelope, KiteResponse } from './lib/protocol/index.js'
export type { KontrolQuery, RegisterArgs, RegisterResult, GetKitesArgs, GetKitesResult, KiteWithToken, KiteEventMessage, GetTokenArgs } from './lib/protocol/index.js'
export type { DnodeLimits } from './lib/dnode/index.js'
export { readKiteKey, writeKiteKey, decodeKiteKey, kiteKeyPath } from './lib/kitekey.js'
export type { KiteKeyClaims } from './lib/kitekey.js'
export { loadConfig } from './lib/config.js'
export type { KiteConfig, KiteLogLevel, LoadConfigOptions } from './lib/config.js'
