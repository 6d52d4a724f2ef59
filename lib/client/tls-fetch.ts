import { Agent, fetch as undiciFetch } from 'undici'
import type { ClientTlsOptions } from './transports/transport.js'

/** A fetch that uses `tls` (its own undici Agent, as Node's fetch is undici) or the global fetch when there is none; `close` frees the Agent. */
export function tlsFetch(tls: ClientTlsOptions | undefined): { fetch: typeof fetch; close(): void } {
  if (tls === undefined) return { fetch: (input, init) => fetch(input, init), close: () => {} }
  const agent = new Agent({ connect: { ...tls } })
  return {
    fetch: (async (input: string | URL, init?: RequestInit) => undiciFetch(input, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch,
    close: () => void agent.destroy().catch(() => {}),
  }
}
