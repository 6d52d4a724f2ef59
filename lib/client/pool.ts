import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { silentLogger } from '../silent-logger.js'
import { KiteError, isTokenExpired, kiteError } from '../errors.js'
import { KITE_FIELDS, type KiteIdentity } from '../protocol/kite.js'
import type { KiteEventMessage, KiteWithToken, KontrolQuery } from '../protocol/kontrol.js'
import { Breaker, type BreakerOptions, type BreakerState } from './breaker.js'
import type { KiteClient, KiteClientOptions } from './client.js'
import { makeStrategy, type PoolKite, type PoolStrategy, type StrategyName } from './strategies.js'

/** Where a pool finds its kites: Kontrol, through kontrol-register's finder or a standalone client. */
export interface PoolSource {
  /** The kites matching `query`, with tokens; `watch` gets REGISTER/DEREGISTER events while the connection to Kontrol lasts. */
  find(query: KontrolQuery, watch?: (event: KiteEventMessage) => void): Promise<KiteWithToken[]>
  /** Changes whenever the connection to Kontrol changes (undefined: unknown, watch once). */
  session(): unknown
  /** A client (not connected) for one kite, carrying its token and renewing it (one renewal per kite). */
  clientFor(found: KiteWithToken, options: KiteClientOptions): KiteClient
  /** Renews the token of a client made by `clientFor` now (joining a renewal already on its way). */
  renewToken?(client: KiteClient): Promise<void>
}

/** Options of a pool. */
export interface KitePoolOptions {
  /** How a kite is chosen for each call: `random` (default, Go's behaviour), `round-robin`, `least-pending`, `latency`, or a function. */
  strategy?: StrategyName | PoolStrategy
  /** A kite that cannot be connected within this many ms is skipped for the call (the call goes to the next). Default 2000. */
  connectTimeout?: number
  /** Default per-call timeout in ms. Default 15000. */
  timeout?: number
  /** Retry calls that were sent but got no answer (timeout, dropped connection) on another kite. Default false: such calls fail. */
  idempotent?: boolean
  /** Kites tried per call at most. Default 3. */
  maxAttempts?: number
  /** Circuit breaker per kite (default: 5 failures in 10 s open it for 5 s). */
  breaker?: BreakerOptions
  /** Timeout of the `kite.ping` probe of a kite whose circuit is half-open, ms. Default: `connectTimeout`. */
  probeTimeout?: number
  /** A kite with calls in flight that has answered nothing for this many ms is skipped while others can take calls. Default: `connectTimeout`. */
  stallTimeout?: number
  /** Ms between full refreshes from Kontrol (besides the watch). Default 10000; 0 never. */
  refreshInterval?: number
  /** Follow REGISTER/DEREGISTER events from Kontrol. Default true. */
  watch?: boolean
  /** Options of the KiteClients to the pooled kites (transport, identity, logger, limits). */
  client?: Omit<KiteClientOptions, 'auth' | 'connectTimeout' | 'timeout' | 'reconnect'>
  /** Clock in ms for the breaker and stall detection (default `performance.now`). */
  clock?: () => number
  /** A pino logger (default silent). */
  logger?: Logger
}

/** Per-call options of a pool. */
export interface PoolCallOptions {
  /** Milliseconds to wait for the answer of each attempt. */
  timeout?: number
  /** Overrides the pool's `idempotent` for this call. */
  idempotent?: boolean
}

/** One kite tried by a call. */
export interface PoolAttempt {
  id: string
  url: string
  /** Whether the call had been sent to this kite. */
  sent: boolean
  error: Error
}

/** A pool call that failed: which kites were tried and why. */
export class KitePoolError extends KiteError {
  override name = 'KitePoolError'
  constructor(
    base: KiteError,
    /** Every kite tried, in order. */
    readonly tried: readonly PoolAttempt[],
    /** True when the call was sent (to the last kite tried) and may have run there. */
    readonly sent: boolean,
  ) {
    super(base.type, base.message, base.code, base.id)
  }
}

/** What `pool.stats()` tells of each kite. */
export interface PoolKiteStats {
  id: string
  kite: KiteIdentity
  url: string
  /** The circuit breaker: `closed` (calls go), `open` (skipped), `half-open` (a probe is on its way). */
  state: BreakerState
  connected: boolean
  /** Skipped while others can take calls: calls in flight and no answer for `stallTimeout`. */
  stalled: boolean
  pending: number
  calls: number
  /** Failures counted by the breaker (connect failures, timeouts, dropped connections). */
  failures: number
  /** Failures within the breaker's window now. */
  recentFailures: number
  /** Times the circuit opened. */
  opened: number
  latencyMs: number | null
}

/** `pool.stats()`. */
export interface PoolStats {
  query: KontrolQuery
  kites: PoolKiteStats[]
  /** Calls made through the pool. */
  calls: number
  /** Attempts moved to another kite because the call could not be sent (or, idempotent, got no answer). */
  failovers: number
  /** Calls lost: sent, no answer, not idempotent, so not retried. */
  lost: number
  /** Full refreshes from Kontrol done. */
  refreshes: number
}

/** Events of a pool. */
export interface KitePoolEvents {
  /** A kite joined the pool. */
  add: [kite: PoolKite]
  /** A kite left the pool (deregistered, or no longer listed by Kontrol). */
  remove: [kite: PoolKite]
  /** A kite's circuit changed state. */
  breaker: [kite: PoolKite, state: BreakerState]
  /** A refresh from Kontrol failed (the pool keeps its kites and tries again). Emitted only when listened to. */
  error: [err: Error]
}

const EWMA = 0.3
const NO_OPTIONS: PoolCallOptions = Object.freeze({})
const NO_WATCH = Symbol('no watch yet')

/** The query as a kite path (`/alice/prod/math`), for messages. */
export function queryToString(q: KontrolQuery): string {
  const parts = KITE_FIELDS.map((f) => q[f] ?? '')
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop()
  return '/' + parts.join('/')
}

class Member implements PoolKite {
  pending = 0
  latencyMs: number | null = null
  calls = 0
  failures = 0
  lastProgress = 0
  retired = false
  probing = false
  readonly breaker: Breaker

  constructor(
    readonly kite: KiteIdentity,
    readonly url: string,
    readonly client: KiteClient,
    readonly addedAt: number,
    breaker: BreakerOptions,
    clock: () => number,
    onState: (m: Member, s: BreakerState) => void,
  ) {
    this.breaker = new Breaker(breaker, clock, (s) => onState(this, s))
  }

  get id(): string {
    return this.kite.id
  }

  failed(): void {
    this.failures++
    this.breaker.failure()
  }
}

/**
 * What a call's failed attempt means for the call: `failover` (not sent, or
 * refused unrun: try the next kite), `lost` (sent, no answer: retried only when
 * idempotent), `answer` (the kite answered with an error: the call fails with it).
 */
type Next = 'failover' | 'lost' | 'answer' | 'renew'

function isKiteError(err: unknown): err is KiteError {
  return err instanceof KiteError
}

/**
 * A live pool of the kites matching a Kontrol query: kept current with
 * Kontrol's watch and a periodic refresh; each call goes to one kite chosen
 * by the strategy, fails over to the next when its kite cannot be reached,
 * and skips kites whose circuit breaker is open.
 *
 * Made by `app.kite.pool(query, options)` (kontrol-register),
 * `kontrolClient.pool(query, options)` (a KiteClient connected to Kontrol), or
 * `kitePool(query, { kontrolURL })`.
 */
export class KitePool extends EventEmitter<KitePoolEvents> {
  readonly query: KontrolQuery
  /** Resolves once the first list of kites came from Kontrol (rejects if that failed; calls then try again). */
  readonly ready: Promise<void>
  private readonly members = new Map<string, Member>()
  /** Members in the order they joined (what strategies see). */
  private list: Member[] = []
  private readonly strategy: PoolStrategy
  /** A strategy function of the user's: what it returns is checked on every call. */
  private readonly customStrategy: boolean
  private readonly clock: () => number
  private readonly log: Logger
  private readonly connectTimeout: number
  private readonly timeout: number
  private readonly idempotent: boolean
  private readonly maxAttempts: number
  private readonly stallMs: number
  private readonly probeMs: number
  private readonly watchOn: boolean
  private readonly ctx = { method: '', args: [] as readonly unknown[] }
  private readonly callOptions: { timeout: number }
  /** The clock, read every 100 ms: stall detection needs no clock read per call. */
  private coarseNow: number
  private readonly coarse: NodeJS.Timeout
  /** Round trips are timed on every call for strategies that use them, else on every 8th. */
  private readonly timeEvery: number
  private timeTurn = 0
  private timer: NodeJS.Timeout | null = null
  private loaded = false
  private loading: Promise<void> | null = null
  private watchSession: unknown = NO_WATCH
  private closed = false
  private counts = { calls: 0, failovers: 0, lost: 0, refreshes: 0 }
  private onClose: (() => Promise<void>) | null = null

  constructor(
    private readonly source: PoolSource,
    query: KontrolQuery,
    private readonly o: KitePoolOptions = {},
  ) {
    super()
    this.query = { ...query }
    this.strategy = makeStrategy(o.strategy)
    this.customStrategy = typeof o.strategy === 'function'
    this.clock = o.clock ?? (() => performance.now())
    this.log = (o.logger ?? silentLogger()).child({ pool: queryToString(query) })
    this.connectTimeout = ms(o.connectTimeout, 2000, 'connectTimeout')
    this.timeout = ms(o.timeout, 15000, 'timeout')
    this.callOptions = { timeout: this.timeout }
    this.timeEvery = o.strategy === undefined || o.strategy === 'random' || o.strategy === 'round-robin' || o.strategy === 'least-pending' ? 8 : 1
    this.coarseNow = this.clock()
    this.coarse = setInterval(() => (this.coarseNow = this.clock()), 100)
    this.coarse.unref()
    this.idempotent = o.idempotent === true
    this.maxAttempts = Math.max(1, Math.floor(ms(o.maxAttempts, 3, 'maxAttempts')))
    this.stallMs = ms(o.stallTimeout, this.connectTimeout, 'stallTimeout')
    this.probeMs = ms(o.probeTimeout, this.connectTimeout, 'probeTimeout')
    this.watchOn = o.watch !== false
    new Breaker(o.breaker ?? {}, this.clock) // validates the options now
    const refreshMs = ms(o.refreshInterval, 10000, 'refreshInterval')
    if (refreshMs > 0) {
      this.timer = setInterval(() => void this.refresh().catch(() => {}), refreshMs)
      this.timer.unref()
    }
    this.ready = this.load()
    this.ready.catch(() => {})
  }

  /** Also run `fn` on close (for a Kontrol client the pool owns). */
  closeWith(fn: () => Promise<void>): this {
    this.onClose = fn
    return this
  }

  /** The kites in the pool now. */
  get kites(): readonly PoolKite[] {
    return this.list
  }

  /** Calls `method` on one kite of the pool (with failover) and resolves with its result. */
  tell(method: string, ...args: unknown[]): Promise<unknown> {
    return this.call(method, args)
  }

  /** `tell` with its own timeout in ms for each attempt. */
  tellWithTimeout(method: string, timeoutMs: number, ...args: unknown[]): Promise<unknown> {
    return this.call(method, args, { timeout: timeoutMs })
  }

  /** Calls `method` with an argument list and per-call options. */
  call(method: string, args: unknown[] = [], options: PoolCallOptions = NO_OPTIONS): Promise<unknown> {
    if (this.closed) return Promise.reject(kiteError('KITE_ERR_SEND_CLOSED'))
    if (!this.loaded) return this.load().then(() => this.call(method, args, options))
    this.counts.calls++
    let m: Member | undefined
    try {
      m = this.choose(method, args, null)
    } catch (err) {
      return Promise.reject(err)
    }
    if (m === undefined) return Promise.reject(this.unavailable(method, null))
    if (!m.client.connected) return this.attempts(method, args, options, m, null, false)
    // The usual case, kept lean: a connected kite takes the call.
    const member = m
    const started = this.begin(member)
    return member.client.call(method, args, options.timeout === undefined ? this.callOptions : options).then(
      (result) => {
        this.end(member)
        this.answered(member, started)
        return result
      },
      (err: unknown) => {
        this.end(member)
        return this.recover(method, args, options, member, err, started, null, false)
      },
    )
  }

  /** A call leaves for `m`: returns when (clock), or -2 when this call's round trip is not timed. */
  private begin(m: Member): number {
    if (m.pending++ === 0) m.lastProgress = this.coarseNow
    m.calls++
    if (++this.timeTurn < this.timeEvery) return -2
    this.timeTurn = 0
    return this.clock()
  }

  private end(m: Member): void {
    m.pending--
    if (m.retired && m.pending === 0) void m.client.close()
  }

  /**
   * After a failed attempt on `m`: the error is the call's answer, or the call
   * goes on (same kite after renewing its token, or the next kite), or it was
   * lost (sent, not idempotent).
   */
  private async recover(method: string, args: unknown[], options: PoolCallOptions, m: Member, err: unknown, started: number, tried: PoolAttempt[] | null, renewed: boolean): Promise<unknown> {
    const next = this.classify(m, err, started)
    if (next === 'answer') throw err
    if (next === 'renew' && !renewed && this.source.renewToken !== undefined) {
      // Refused unrun for an expired token (an idle pool outlived it): renew it once, then the same kite again.
      await this.source.renewToken(m.client)
      return this.attempts(method, args, options, m, tried, true)
    }
    ;(tried ??= []).push({ id: m.id, url: m.url, sent: next === 'lost', error: err as Error })
    if (next === 'lost' && !(options.idempotent ?? this.idempotent)) {
      this.counts.lost++
      const base = err as KiteError
      throw new KitePoolError(new KiteError(base.type, `${base.message} (sent to ${describe(m)}; not retried: "${method}" is not idempotent)`, base.code), tried, true)
    }
    return this.attempts(method, args, options, null, tried, renewed)
  }

  /** Attempts after the first (or a first whose kite must be connected): `first` when the kite is already chosen. */
  private async attempts(method: string, args: unknown[], options: PoolCallOptions, first: Member | null, tried: PoolAttempt[] | null, renewed: boolean): Promise<unknown> {
    if ((tried?.length ?? 0) >= this.maxAttempts) throw this.unavailable(method, tried)
    const m = first ?? this.choose(method, args, tried)
    if (m === undefined) throw this.unavailable(method, tried)
    if (first === null) this.counts.failovers++
    let started = -1
    if (m.pending++ === 0) m.lastProgress = this.coarseNow
    try {
      if (!m.client.connected) await m.client.connect()
    } catch (err) {
      this.end(m)
      return this.recover(method, args, options, m, err, started, tried, renewed)
    }
    m.pending--
    started = this.begin(m)
    let result: unknown
    try {
      result = await m.client.call(method, args, options.timeout === undefined ? this.callOptions : options)
    } catch (err) {
      this.end(m)
      return this.recover(method, args, options, m, err, started, tried, renewed)
    }
    this.end(m)
    this.answered(m, started)
    return result
  }

  private unavailable(method: string, tried: PoolAttempt[] | null): KitePoolError {
    if (tried === null) {
      if (this.list.length === 0) return new KitePoolError(kiteError('KITE_ERR_POOL_NO_KITES', queryToString(this.query)), [], false)
      return new KitePoolError(kiteError('KITE_ERR_POOL_UNAVAILABLE', method, `every kite's circuit is open (${this.list.map(describe).join(', ')})`), [], false)
    }
    const what = tried.map((a) => `${a.id} at ${a.url}: ${a.error.message}`).join('; ')
    return new KitePoolError(kiteError('KITE_ERR_POOL_UNAVAILABLE', method, `tried ${what}`), tried, false)
  }

  /** A successful answer: latency, progress, breaker. */
  private answered(m: Member, started: number): void {
    m.lastProgress = this.coarseNow
    if (started >= 0) {
      const rtt = this.clock() - started
      m.latencyMs = m.latencyMs === null ? rtt : m.latencyMs + EWMA * (rtt - m.latencyMs)
    }
    m.breaker.success()
  }

  /** `started` is when the call was handed to the kite's connection (-2: not timed), or -1 if it never was. */
  private classify(m: Member, err: unknown, started: number): Next {
    if (!isKiteError(err)) return 'answer'
    if (err.remote) {
      // Refused without running: another kite may take it.
      if (isTokenExpired(err)) return 'renew'
      if (err.type === 'requestLimitError') return 'failover'
      this.answered(m, started)
      return 'answer'
    }
    switch (err.code) {
      case 'KITE_ERR_CONNECT_TIMEOUT':
      case 'KITE_ERR_CONNECT_FAILED':
      case 'KITE_ERR_SEND_NOT_CONNECTED':
      case 'KITE_ERR_SEND_CLOSED':
        m.failed()
        return 'failover'
      case 'KITE_ERR_SEND_FAILED':
        // An argument that cannot be encoded fails everywhere; a socket that broke is the kite's.
        if (m.client.connected) return 'answer'
        m.failed()
        return 'failover'
      case 'KITE_ERR_DISCONNECTED':
      case 'KITE_ERR_CALL_TIMEOUT':
        m.failed()
        return started !== -1 ? 'lost' : 'failover'
      default:
        return 'answer'
    }
  }

  /** Picks a kite for a call: healthy ones first, stalled ones only when no other is left; never one already tried. */
  private choose(method: string, args: readonly unknown[], tried: PoolAttempt[] | null): Member | undefined {
    const all = this.list
    if (all.length === 0) return undefined
    let now = -1
    let usable = 0
    let stalled = 0
    for (let i = 0; i < all.length; i++) {
      const m = all[i]!
      if (!m.breaker.closed) {
        if (m.breaker.probeDue()) this.probe(m)
        continue
      }
      if (tried !== null && tried.some((a) => a.id === m.id)) continue
      if (m.pending > 0) {
        if (now < 0) now = this.coarseNow
        if (now - m.lastProgress > this.stallMs) {
          stalled++
          continue
        }
      }
      usable++
    }
    let candidates: Member[]
    if (usable === all.length) candidates = all
    else if (usable > 0 || stalled > 0) {
      const takeStalled = usable === 0
      candidates = all.filter((m) => {
        if (!m.breaker.closed || (tried !== null && tried.some((a) => a.id === m.id))) return false
        return takeStalled || !(m.pending > 0 && now - m.lastProgress > this.stallMs)
      })
    } else return undefined
    this.ctx.method = method
    this.ctx.args = args
    const pick = this.strategy(candidates, this.ctx)
    // The built-in strategies return one of the candidates (never none: the list is not empty).
    if (!this.customStrategy) return pick as Member
    if (pick === undefined) throw new KitePoolError(kiteError('KITE_ERR_POOL_UNAVAILABLE', method, `the strategy chose none of ${candidates.length} kites`), tried ?? [], false)
    if (!(pick instanceof Member) || !candidates.includes(pick)) throw new TypeError('pool strategy returned a kite that is not among those given')
    return pick
  }

  /** Half-open: one `kite.ping` decides whether the kite takes calls again. */
  private probe(m: Member): void {
    if (m.probing) return
    m.probing = true
    m.breaker.probing()
    const run = async (): Promise<void> => {
      if (!m.client.connected) await m.client.connect()
      await m.client.tellWithTimeout('kite.ping', this.probeMs)
    }
    run().then(
      () => {
        m.probing = false
        m.lastProgress = this.coarseNow
        m.breaker.success()
      },
      (err: Error) => {
        m.probing = false
        this.log.debug({ kite: m.id, err: err.message }, 'pool: probe failed')
        m.failures++
        m.breaker.failure()
      },
    )
  }

  private load(): Promise<void> {
    this.loading ??= this.refresh().finally(() => {
      this.loading = null
    })
    return this.loading
  }

  /** Asks Kontrol for the kites now (and watches again when the connection to Kontrol changed). */
  async refresh(): Promise<void> {
    if (this.closed) return
    const started = this.clock()
    const session = this.source.session()
    const watch = this.watchOn && (session === undefined ? this.watchSession === NO_WATCH : session !== this.watchSession)
    let found: KiteWithToken[]
    try {
      found = await this.source.find(this.query, watch ? (event) => this.onEvent(event) : undefined)
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'pool: cannot list kites from Kontrol; keeping the ones known')
      if (this.listenerCount('error') > 0) this.emit('error', err as Error)
      throw err
    }
    if (this.closed) return
    // Read after the answer: the watch lives on the connection that carried it (a reconnect takes round trips, so it cannot have happened since).
    if (watch) this.watchSession = this.source.session()
    this.counts.refreshes++
    this.loaded = true
    const listed = new Set<string>()
    for (const k of found) {
      listed.add(k.kite.id)
      this.upsert(k)
    }
    // Kites Kontrol no longer lists (gone, or their heartbeat is overdue) leave, unless they joined by an event meanwhile.
    for (const m of this.list) if (!listed.has(m.id) && m.addedAt <= started) this.retire(m)
  }

  private onEvent(event: KiteEventMessage): void {
    if (this.closed || event === null || typeof event !== 'object' || event.kite === null || typeof event.kite !== 'object' || typeof event.kite.id !== 'string') return
    if (event.action === 'DEREGISTER') {
      const m = this.members.get(event.kite.id)
      if (m !== undefined) this.retire(m)
    } else if (event.action === 'REGISTER' && typeof event.url === 'string' && typeof event.token === 'string') {
      this.upsert({ kite: event.kite, url: event.url, token: event.token })
    }
  }

  private upsert(k: KiteWithToken): void {
    const existing = this.members.get(k.kite.id)
    if (existing !== undefined) {
      if (existing.url === k.url) return
      this.retire(existing)
    }
    let client: KiteClient
    try {
      client = this.source.clientFor(k, { ...this.o.client, connectTimeout: this.connectTimeout, timeout: this.timeout, reconnect: false })
    } catch (err) {
      this.log.warn({ kite: k.kite.id, url: k.url, err: (err as Error).message }, 'pool: skipping a kite with an unusable URL')
      return
    }
    const m = new Member(k.kite, k.url, client, this.clock(), this.o.breaker ?? {}, this.clock, (member, state) => {
      this.log.info({ kite: member.id, state }, 'pool: circuit breaker')
      this.emit('breaker', member, state)
    })
    this.members.set(m.id, m)
    this.list = [...this.list, m]
    this.emit('add', m)
  }

  private retire(m: Member): void {
    if (this.members.get(m.id) !== m) return
    this.members.delete(m.id)
    this.list = this.list.filter((x) => x !== m)
    m.retired = true
    if (m.pending === 0) void m.client.close()
    this.emit('remove', m)
  }

  /** The pool's kites with their breaker state, calls in flight, failures and latency. */
  stats(): PoolStats {
    const now = this.clock()
    return {
      query: { ...this.query },
      calls: this.counts.calls,
      failovers: this.counts.failovers,
      lost: this.counts.lost,
      refreshes: this.counts.refreshes,
      kites: this.list.map((m) => ({
        id: m.id,
        kite: { ...m.kite },
        url: m.url,
        state: m.breaker.state,
        connected: m.client.connected,
        stalled: m.pending > 0 && now - m.lastProgress > this.stallMs,
        pending: m.pending,
        calls: m.calls,
        failures: m.failures,
        recentFailures: m.breaker.recentFailures,
        opened: m.breaker.opened,
        latencyMs: m.latencyMs,
      })),
    }
  }

  /** Stops refreshing and closes every connection; calls in flight fail with `disconnect`. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    clearInterval(this.coarse)
    const members = this.list
    this.list = []
    this.members.clear()
    await Promise.all(members.map((m) => m.client.close()))
    await this.onClose?.()
  }
}

function describe(m: Member): string {
  return `${m.id} at ${m.url}`
}

function ms(v: number | undefined, fallback: number, name: string): number {
  const x = v ?? fallback
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) throw new TypeError(`pool option ${name} must be a number ≥ 0`)
  return x
}
