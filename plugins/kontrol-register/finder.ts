import type { Logger } from 'pino'
import { KiteError, kiteError } from '../../lib/errors.js'
import { KiteClient, type KiteClientOptions } from '../../lib/client/client.js'
import { decodeJwt } from '../../lib/kitekey.js'
import type { KiteObserver } from '../../lib/observe/observer.js'
import type { GetKitesResult, KontrolQuery } from '../../lib/protocol/kontrol.js'

/** What finding kites needs from the link to Kontrol. */
export interface KontrolCaller {
  /** Calls a Kontrol method once connected (rejects when Kontrol cannot be reached in time). */
  call(method: string, arg: unknown): Promise<unknown>
}

export interface FinderOptions {
  /** Renew tokens this many ms before they expire (Go: 30 s). */
  renewBeforeMs: number
  /** Retry a failed renewal after this many ms (Go: 10 s). */
  retryMs: number
  /** Options for the KiteClients handed out. */
  client: KiteClientOptions
  /** The observer of the clients handed out (the kite's metrics and tracing), read when each is made. */
  observer?: () => KiteObserver | null
  log: Logger
}

function expiryOf(token: string): number | null {
  try {
    const exp = decodeJwt(token).claims.exp
    return typeof exp === 'number' ? exp * 1000 : null
  } catch {
    return null
  }
}

/**
 * `getKites` and `getToken` for a kite registered with Kontrol: tokens are
 * cached until shortly before they expire, and every KiteClient handed out
 * renews its own token before it expires or when a call says it expired.
 */
export class KiteFinder {
  private readonly tokens = new Map<string, { token: string; renewAt: number }>()

  constructor(
    private readonly kontrol: KontrolCaller,
    private readonly o: FinderOptions,
  ) {}

  /** A token for the one kite matching `query` (cached unless `force`). */
  async getToken(query: KontrolQuery, force = false): Promise<string> {
    const key = JSON.stringify(query)
    const hit = this.tokens.get(key)
    if (!force && hit !== undefined && hit.renewAt > Date.now()) return hit.token
    const token = (await this.kontrol.call('getToken', { ...query, force })) as string
    if (typeof token !== 'string') throw kiteError('KITE_ERR_RESPONSE_INVALID')
    this.tokens.set(key, { token, renewAt: (expiryOf(token) ?? Date.now()) - this.o.renewBeforeMs })
    return token
  }

  /** Clients (not yet connected) for the kites matching `query`, each carrying its token. */
  async getKites(query: KontrolQuery): Promise<KiteClient[]> {
    const result = (await this.kontrol.call('getKites', { query })) as GetKitesResult
    if (result === null || typeof result !== 'object' || !Array.isArray(result.kites)) throw kiteError('KITE_ERR_RESPONSE_INVALID')
    return result.kites.map((found) => {
      const client = new KiteClient(found.url, { ...this.o.client, observer: this.o.observer?.() ?? null, auth: { type: 'token', key: found.token } })
      this.renewTokens(client, found.kite.id, found.token)
      return client
    })
  }

  /** Keeps `client`'s token fresh: renewed before expiry and on `tokenExpired`, until the client closes. */
  private renewTokens(client: KiteClient, kiteId: string, token: string): void {
    let timer: NodeJS.Timeout | null = null
    let closed = false
    const schedule = (ms: number): void => {
      if (closed) return
      if (timer !== null) clearTimeout(timer)
      timer = setTimeout(() => void renew(), Math.max(0, Math.min(ms, 2 ** 31 - 1)))
      timer.unref()
    }
    const renew = async (): Promise<void> => {
      try {
        const fresh = await this.getToken({ id: kiteId }, true)
        client.auth = { type: 'token', key: fresh }
        schedule((expiryOf(fresh) ?? Date.now()) - this.o.renewBeforeMs - Date.now())
      } catch (err) {
        if (err instanceof KiteError && /no kites found/.test(err.message)) return
        this.o.log.warn({ kite: kiteId, err: (err as Error).message }, 'kontrol-register: token renewal failed; retrying')
        schedule(this.o.retryMs)
      }
    }
    const stop = (): void => {
      if (timer !== null) clearTimeout(timer)
      timer = null
    }
    // Renewal runs only while connected: a client that was never connected (or was
    // dropped) holds no timer, so unused clients can be collected.
    client.on('connect', () => {
      const key = client.auth?.key ?? token
      const exp = expiryOf(key)
      if (exp !== null) schedule(exp - this.o.renewBeforeMs - Date.now())
    })
    client.on('disconnect', stop)
    client.on('tokenExpired', () => void renew())
    client.once('close', () => {
      closed = true
      stop()
    })
  }
}
