import type { KiteConnection } from '../../lib/connection/connection.js'
import { kiteError } from '../../lib/errors.js'
import { decodeJwt } from '../../lib/kitekey.js'
import { KITE_FIELDS, validateKite, type KiteIdentity } from '../../lib/protocol/kite.js'
import type { KiteEventMessage, KiteWithToken, KontrolQuery, RegisterResult } from '../../lib/protocol/kontrol.js'
import { isConstraint, parseConstraint } from '../../lib/protocol/version.js'
import type { KontrolKeys } from './keys.js'
import type { Registry } from './registry.js'
import type { KeyPairRecord, KiteRecord, KontrolStorage } from './storage/storage.js'
import type { TokenIssuer } from './tokens.js'

function invalid(message: string): Error {
  return kiteError('KITE_ERR_KONTROL_INVALID', message)
}

/** Reads a query from untrusted input: an object of string fields. */
export function parseQuery(value: unknown): KontrolQuery {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('invalid query: must be an object')
  const q: KontrolQuery = {}
  for (const field of KITE_FIELDS) {
    const v = (value as Record<string, unknown>)[field]
    if (v === undefined || v === null || v === '') continue
    if (typeof v !== 'string' || v.length > 256) throw invalid(`invalid query: ${field} must be a string`)
    q[field] = v
  }
  return q
}

/** True when `kite` matches every non-empty field of `q` (the version may be a constraint). */
export function matchesQuery(q: KontrolQuery, kite: KiteIdentity): boolean {
  for (const field of KITE_FIELDS) {
    const want = q[field]
    if (want === undefined || want === '') continue
    if (field === 'version' && isConstraint(want)) {
      if (!parseConstraint(want)(kite.version)) return false
    } else if (kite[field] !== want) return false
  }
  return true
}

function validateURL(url: unknown): string {
  if (typeof url !== 'string' || url === '') throw invalid('empty url')
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw invalid(`invalid register URL: ${url.slice(0, 200)}`)
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) throw invalid(`invalid register URL: ${url.slice(0, 200)}`)
  return url
}

/** The audience of tokens for `kite`: `/username/environment/name` — never the root `/`. */
export function audienceOf(kite: KiteIdentity): string {
  return `/${kite.username}/${kite.environment}/${kite.name}`
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
  return items
}

/** What Kontrol does, apart from how calls reach it (kite methods and HTTP both use this). */
export class KontrolService {
  /** Successful registrations (kite method and HTTP) and getKites calls since start, for metrics. */
  readonly stats = { registrations: 0, getKites: 0 }

  constructor(
    private readonly storage: KontrolStorage,
    private readonly registry: Registry,
    private readonly keys: KontrolKeys,
    private readonly tokens: TokenIssuer,
  ) {}

  /**
   * Registers `kite` (username already authenticated) at `url`. `kiteKey` is
   * the caller's kite.key: the pair that signed it is the kite's pair; a kite.key
   * of a retired pair gets a fresh kite.key in the result.
   */
  async register(kite: KiteIdentity, url: unknown, kiteKey: string, conn: KiteConnection | null, heartbeatInterval: number): Promise<RegisterResult> {
    const problem = validateKite(kite)
    if (problem !== null) throw invalid(problem)
    const checkedURL = validateURL(url)
    const { pair, renewed } = await this.pairOfKiteKey(kiteKey)
    await this.registry.register(kite, checkedURL, pair.id, conn)
    const result: RegisterResult = { url: checkedURL, heartbeatInterval }
    if (renewed) {
      result.kiteKey = await this.tokens.kiteKey(kite.username, pair)
      result.publicKey = pair.public
    }
    this.stats.registrations++
    return result
  }

  private async pairOfKiteKey(kiteKey: string): Promise<{ pair: KeyPairRecord; renewed: boolean }> {
    const claim = decodeJwt(kiteKey).claims.kontrolKey
    const pair = typeof claim === 'string' ? await this.keys.byPublic(claim) : null
    if (pair === null) throw kiteError('KITE_ERR_KONTROL_NO_KEY')
    if (pair.deletedAt !== null) return { pair: this.keys.current, renewed: true }
    return { pair, renewed: false }
  }

  /** The pair tokens for a kite are signed with: the one it registered with, or the current one if retired. */
  private async pairFor(record: KiteRecord): Promise<KeyPairRecord> {
    const pair = await this.keys.get(record.keyId)
    return pair === null || pair.deletedAt !== null ? this.keys.current : pair
  }

  /** Kites matching the query, each with a token for `requester`. */
  async find(query: KontrolQuery, requester: string, force = false): Promise<KiteWithToken[]> {
    const exact = { ...query }
    let constraint: ((v: string) => boolean) | null = null
    if (query.version !== undefined && isConstraint(query.version)) {
      try {
        constraint = parseConstraint(query.version)
      } catch (err) {
        throw invalid((err as Error).message)
      }
      delete exact.version
    }
    if (Object.keys(exact).length === 0) throw invalid(constraint === null ? 'all query fields are empty' : 'a version constraint needs another query field')
    let records: KiteRecord[]
    try {
      records = await this.storage.query(exact, this.registry.freshSince())
    } catch (err) {
      throw kiteError('KITE_ERR_KONTROL_STORAGE', (err as Error).message)
    }
    // A kite whose heartbeat is overdue (frozen, its host gone) is not handed out, though it is not removed until interval + grace.
    const matching = records.filter((r) => (constraint === null || constraint(r.kite.version)) && !this.registry.overdue(r))
    // The tokens are signed concurrently, off the event loop (kites of one audience share one).
    return Promise.all(
      shuffle(matching).map(async (r) => {
        const pair = await this.pairFor(r)
        return { kite: r.kite, url: r.url, keyId: r.keyId, token: await this.tokens.token(audienceOf(r.kite), requester, pair, force) }
      }),
    )
  }

  /** A token for exactly one kite. */
  async token(query: KontrolQuery, requester: string, force: boolean): Promise<string> {
    const found = await this.find(query, requester, force)
    if (found.length === 0) throw kiteError('KITE_ERR_KONTROL_NO_KITES')
    if (found.length > 1) throw kiteError('KITE_ERR_KONTROL_AMBIGUOUS')
    return found[0]!.token
  }

  /** The public key that verifies the caller's kite.key, or the current one if that pair was retired. */
  async publicKey(kiteKey: string): Promise<string> {
    const { pair } = await this.pairOfKiteKey(kiteKey)
    return pair.public
  }

  /** A new kite.key for `username`, signed with the current pair, off the event loop. */
  kiteKeyFor(username: string): Promise<string> {
    return this.tokens.kiteKey(username, this.keys.current)
  }

  /** The same, signed on the calling thread: for tools and tests that need a kite.key at once. */
  issueKiteKey(username: string): string {
    return this.tokens.kiteKeySync(username, this.keys.current)
  }

  /** Watches the registry for `query`; returns the function that stops watching. */
  watch(query: KontrolQuery, requester: string, send: (event: KiteEventMessage) => void): () => void {
    return this.storage.onEvent((event) => {
      if (!matchesQuery(query, event.kite)) return
      const message: KiteEventMessage = { action: event.action, kite: event.kite, url: event.url }
      if (event.action === 'DEREGISTER') {
        send(message)
        return
      }
      // A REGISTER carries a token signed with the pair the kite trusts.
      void this.storage
        .get(event.kite.id)
        .then(async (record) => (record === null ? this.keys.current : this.pairFor(record)))
        .catch(() => this.keys.current)
        .then(async (pair) => {
          message.token = await this.tokens.token(audienceOf(event.kite), requester, pair)
          send(message)
        })
        .catch(() => {
          // The token could not be signed: the watcher hears nothing of this kite rather than get a token-less event.
        })
    })
  }
}
