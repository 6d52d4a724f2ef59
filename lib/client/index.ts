export * from './client.js'
export * from './backoff.js'
export type { TransportName } from './transports/transport.js'
