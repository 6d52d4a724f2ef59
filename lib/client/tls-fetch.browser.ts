import type { ClientTlsOptions } from './transports/transport.js'

/** Browser stand-in for tls-fetch.ts: a page has no TLS settings of its own (the browser's trust store decides), so it is the global fetch; no undici. */
export function tlsFetch(_tls: ClientTlsOptions | undefined): { fetch: typeof fetch; close(): void } {
  return { fetch: (input, init) => fetch(input, init), close: () => {} }
}
