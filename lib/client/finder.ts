import type { Logger } from 'pino'
import { silentLogger } from '../silent-logger.js'
import { isNoKitesFound, kiteError } from '../errors.js'
import { KiteClient, type KiteClientOptions } from './client.js'
import { decodeJwt } from '../kitekey.js'
import type { KiteObserver } from '../observe/observer.js'
import type { GetKitesResult, KiteEventMessage, KiteWithToken, KontrolQuery } from '../protocol/kontrol.js'
import { KitePool, type KitePoolOptions, type PoolSource } from './pool.js'

/** What finding kites needs from the link to Kontrol. */
export interface KontrolCaller {
  /** Calls a Kontrol method once connected (rejects when Kontrol cannot be reached in time). */
  call(method: string, arg: unknown): Promise<unknown>
  /**
   * A value that changes whenever the connection to Kontrol changes (a watch
   * lives as long as its connection). Without it a pool watches only once.
   */
  session?(): unknown
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
export class KiteFinder implements PoolSource {
  private readonly tokens = new Map<string, { token: string; renewAt: number }>()
  private readonly renewers = new WeakMap<KiteClient, () => Promise<void>>()

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
    return (await this.find(query)).map((found) => this.clientFor(found))
  }

  /** The kites matching `query`, with tokens; `watch` (when given) gets REGISTER/DEREGISTER events while the connection to Kontrol lasts. */
  async find(query: KontrolQuery, watch?: (event: KiteEventMessage) => void): Promise<KiteWithToken[]> {
    const arg = watch === undefined ? { query } : { query, watchCallback: watch }
    const result = (await this.kontrol.call('getKites', arg)) as GetKitesResult
    if (result === null || typeof result !== 'object' || !Array.isArray(result.kites)) throw kiteError('KITE_ERR_RESPONSE_INVALID')
    for (const k of result.kites) {
      if (k === null || typeof k !== 'object' || typeof k.url !== 'string' || typeof k.token !== 'string' || k.kite === null || typeof k.kite !== 'object' || typeof k.kite.id !== 'string') {
        throw kiteError('KITE_ERR_RESPONSE_INVALID')
      }
    }
    return result.kites
  }

  /** The current connection to Kontrol (see `KontrolCaller.session`). */
  session(): unknown {
    return this.kontrol.session?.()
  }

  /** A client (not yet connected) for one kite found, carrying its token and renewing it. */
  clientFor(found: { kite: { id: string }; url: string; token: string }, options: KiteClientOptions = {}): KiteClient {
    const client = new KiteClient(found.url, { ...this.o.client, observer: this.o.observer?.() ?? null, ...options, auth: { type: 'token', key: found.token } })
    this.renewTokens(client, found.kite.id, found.token)
    return client
  }

  /** A pool of the kites matching `query`, kept current through Kontrol (see `KitePool`). */
  pool(query: KontrolQuery, options: KitePoolOptions = {}): KitePool {
    return new KitePool(this, query, { logger: this.o.log, ...options })
  }

  /** Renews the token of a client handed out here now (shared with a renewal already running); resolves when done, even if it failed. */
  renewToken(client: KiteClient): Promise<void> {
    return this.renewers.get(client)?.() ?? Promise.resolve()
  }

  /** Ms until a token expiring at `exp` is renewed: `renewBefore` ahead, or halfway when it lives shorter than that (never a loop). */
  private renewIn(exp: number): number {
    const left = exp - Date.now()
    return Math.max(left - this.o.renewBeforeMs, left / 2, 0)
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
    let renewing: Promise<void> | null = null
    // One renewal at a time per kite, however many calls found the token expired.
    const renew = (): Promise<void> =>
      (renewing ??= fetchToken().finally(() => {
        renewing = null
      }))
    this.renewers.set(client, renew)
    const fetchToken = async (): Promise<void> => {
      try {
        const fresh = await this.getToken({ id: kiteId }, true)
        client.auth = { type: 'token', key: fresh }
        schedule(this.renewIn(expiryOf(fresh) ?? Date.now()))
      } catch (err) {
        if (isNoKitesFound(err)) return
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
      if (exp !== null) schedule(this.renewIn(exp))
    })
    client.on('disconnect', stop)
    client.on('tokenExpired', () => void renew())
    client.once('close', () => {
      closed = true
      stop()
    })
  }
}

/** A KontrolCaller over a KiteClient connected (or connecting) to Kontrol; its session changes with each (re)connect. */
export function kontrolCaller(client: KiteClient): KontrolCaller {
  let connects = 0
  client.on('connect', () => connects++)
  return {
    async call(method: string, arg: unknown): Promise<unknown> {
      if (!client.connected) await client.connect()
      return client.tell(method, arg)
    },
    session: () => (client.connected ? connects : -1),
  }
}

/** Options of a pool made without kontrol-register: where Kontrol is and how to authenticate to it. */
export interface StandalonePoolOptions extends KitePoolOptions {
  /** Kontrol's URL (e.g. the kite.key's `kontrolURL`). */
  kontrolURL: string | URL
  /** Credentials for Kontrol: `{ type: 'kiteKey' }` (default: this machine's kite.key), a kite.key, or a token. */
  auth?: KiteClientOptions['auth']
  /** Where to look for kite.key (default `$KITE_HOME`, else `~/.kite`). */
  kiteHome?: string
  /** Renew tokens this many seconds before they expire. Default 30. */
  renewBefore?: number
}

/** A pool for a KiteClient connected to Kontrol (`kontrolClient.pool(query, options)`); the client stays open after `pool.close()`. */
export function poolThroughKontrol(kontrolClient: KiteClient, query: KontrolQuery, options: KitePoolOptions = {}, renewBefore = 30): KitePool {
  const log = options.logger ?? silentLogger()
  const finder = new KiteFinder(kontrolCaller(kontrolClient), { renewBeforeMs: renewBefore * 1000, retryMs: 10000, log, client: { kite: kontrolClient.kite, logger: log } })
  return finder.pool(query, options)
}

/**
 * A pool for a process that is not a kite: it opens its own connection to
 * Kontrol (`kontrolURL`, with `auth`, by default this machine's kite.key),
 * reconnecting as needed, and closes it with the pool.
 */
export function kitePool(query: KontrolQuery, options: StandalonePoolOptions): KitePool {
  const { kontrolURL, auth, kiteHome, renewBefore, ...rest } = options
  const kontrol = new KiteClient(kontrolURL, {
    auth: auth ?? { type: 'kiteKey' },
    kiteHome,
    reconnect: true,
    kite: rest.client?.kite,
    logger: rest.logger,
    transport: rest.client?.transport,
  })
  kontrol.on('error', () => {}) // reconnect attempts failing: calls report it
  return poolThroughKontrol(kontrol, query, rest, renewBefore).closeWith(() => kontrol.close())
}
