import type { Agent } from 'undici'
import type { ClientTlsOptions } from './transports/transport.js'
import { kiteError } from '../errors.js'

/**
 * A fetch that uses `tls` (its own undici Agent, as Node's fetch is undici) or the global fetch when
 * there is none; `close` frees the Agent. undici is imported only when TLS settings are given, so a
 * client without them does not load it.
 */
export function tlsFetch(tls: ClientTlsOptions | undefined): { fetch: typeof fetch; close(): void } {
  if (tls === undefined) return { fetch: (input, init) => fetch(input, init), close: () => {} }
  const undici = import('undici')
  let agent: Agent | null = null
  let closed = false
  const ready = undici.then((u) => {
    if (agent === null && !closed) agent = new u.Agent({ connect: { ...tls } })
    return u
  })
  return {
    fetch: (async (input: string | URL, init?: RequestInit) => {
      const u = await ready
      if (agent === null) throw kiteError('KITE_ERR_FETCH_CLOSED')
      return u.fetch(input, { ...(init as object), dispatcher: agent })
    }) as unknown as typeof fetch,
    close: () => {
      closed = true
      if (agent !== null) void agent.destroy().catch(() => {})
      agent = null
    },
  }
}
