import { registerURL } from '../kite-server/url.js'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { chmod, mkdir } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { kiteHome } from '../../lib/kitekey.js'
import { checkOptions, type OptionChecker } from '../../lib/options.js'
import { KontrolKeys, type KeyPairSource } from './keys.js'
import { kontrolHttpRoutes } from './http.js'
import { addKontrolMethods, type MachineAuthenticate } from './methods.js'
import { Registry } from './registry.js'
import { KontrolService } from './service.js'
import { openStorage } from './storage/index.js'
import type { KeyPairRecord, KontrolStorage } from './storage/storage.js'
import { JwtSigner } from './signer.js'
import { TokenIssuer } from './tokens.js'

/** Options of the kontrol plugin. */
export interface KontrolOptions {
  /** `memory`, `sqlite:<file>`, a `postgres://` URL, or a storage object. Default `sqlite:$KITE_HOME/kontrol.db`. */
  storage?: string | KontrolStorage
  /** The key pair (PEM text or files). Default: `KONTROL_PUBLICKEYFILE`/`KONTROL_PRIVATEKEYFILE`, else the newest pair in storage, else a new one. */
  keyPair?: KeyPairSource
  /** Kontrol's URL as written into kite.keys. Default: `http://<listen address><prefix>`. */
  kontrolURL?: string
  /** The heartbeat interval in seconds: a kite not heard from for this long is no longer handed out by `getKites`. Default 10. */
  heartbeatInterval?: number
  /** Seconds of silence, beyond one interval, after which a kite is gone. Default 10 (so ≤ 20 s). */
  heartbeatGrace?: number
  /** Seconds kites are asked to beat before the interval is up (they beat every interval − slack, in whole seconds rounded down from 1 s up, as Go kites read it), so that an on-time kite is never overdue. Default: a quarter of the interval, at most 1. */
  heartbeatSlack?: number
  /** Milliseconds between sweeps (batched refreshes, stale removal). Default 1000. */
  sweepInterval?: number
  /** Token lifetime in seconds. Default 48 h (Go). */
  tokenTTL?: number
  /** Seconds iat/nbf are backdated and tokens last longer. Default 300 (Go). */
  tokenLeeway?: number
  /** Tokens kept for reuse, per (audience, requester, key pair); the least recently used go first. Default 10000. */
  tokenCacheSize?: number
  /**
   * RS256 signings run at once on libuv's thread pool, off the event loop. Default: the number of
   * CPUs, at most the pool's size (`UV_THREADPOOL_SIZE`, 4 unless set). 0 signs on the event loop
   * (each token then stalls every other call of this Kontrol for about 1–2 ms).
   */
  signingThreads?: number
  /** Enables `registerMachine`: must throw unless the caller may get a kite.key for its claimed username. */
  machineAuthenticate?: MachineAuthenticate
  /** Milliseconds between re-reads of the stored key pairs, so that pairs other Kontrols add are trusted. Default 10000. */
  keyRefreshInterval?: number
  clock?: () => number
}

/** `app.kontrol`: the registry's parts, for tools and tests. */
/** Counts for metrics (`kiteMetrics` exports them); the totals run since start. */
export interface KontrolStats {
  /** Kites registered and alive on this Kontrol (connected or heard over HTTP). */
  kitesRegistered: number
  registrations: number
  getKites: number
  tokensSigned: number
  /** Kites forgotten because their heartbeats stopped. */
  heartbeatsMissed: number
}

export interface KontrolDecorator {
  /** Counts for metrics. */
  stats(): KontrolStats
  storage: KontrolStorage
  keys: KontrolKeys
  service: KontrolService
  registry: Registry
  /** Kontrol's URL (known once listening, unless set in the options). */
  readonly url: string
}

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Kontrol (kontrol plugin). */
    kontrol: KontrolDecorator
  }
}

/** How often stored key pairs are re-read, to trust pairs other Kontrols added. */
const KEY_REFRESH_MS = 10_000

/** One signing per CPU, within libuv's thread pool (which file and DNS work share). */
function defaultSigningThreads(): number {
  const pool = Number(process.env.UV_THREADPOOL_SIZE)
  return Math.max(1, Math.min(availableParallelism(), Number.isInteger(pool) && pool > 0 ? pool : 4))
}

/** Checks every option when the plugin registers. */
function resolveKontrolOptions(o: KontrolOptions) {
  const c: OptionChecker = checkOptions('kontrol', o)
  const storage = c.raw('storage')
  if (storage !== undefined) {
    if (typeof storage === 'string') {
      if (!/^(memory$|sqlite:|postgres(ql)?:\/\/)/i.test(storage) && !/\.(db|sqlite|sqlite3)$/i.test(storage)) c.fail('storage', "must be 'memory', 'sqlite:<file>', a postgres:// URL or a KontrolStorage")
    } else if (storage === null || typeof storage !== 'object' || typeof (storage as KontrolStorage).query !== 'function' || typeof (storage as KontrolStorage).upsert !== 'function') {
      c.fail('storage', "must be 'memory', 'sqlite:<file>', a postgres:// URL or a KontrolStorage")
    }
  }
  const keyPair = c.object('keyPair')
  for (const field of ['publicKey', 'privateKey', 'publicKeyFile', 'privateKeyFile']) {
    if (keyPair[field] !== undefined && (typeof keyPair[field] !== 'string' || keyPair[field] === '')) c.fail(`keyPair.${field}`, 'must be a non-empty string')
  }
  c.url('kontrolURL', o.kontrolURL, ['http:', 'https:'])
  const positive = { min: Number.MIN_VALUE }
  const heartbeatSeconds = c.number('heartbeatInterval', 10, positive)
  const slackSeconds = c.number('heartbeatSlack', Math.min(1, heartbeatSeconds / 4), positive)
  if (slackSeconds >= heartbeatSeconds) c.fail('heartbeatSlack', `must be less than heartbeatInterval (${heartbeatSeconds}), got ${slackSeconds}`)
  return {
    heartbeatSeconds,
    slackSeconds,
    graceSeconds: c.number('heartbeatGrace', 10, positive),
    sweepMs: c.number('sweepInterval', 1000, positive),
    tokenTTL: c.number('tokenTTL', 48 * 3600, positive),
    tokenLeeway: c.number('tokenLeeway', 300),
    tokenCacheSize: c.number('tokenCacheSize', 10_000, { integer: true, min: 1 }),
    signingThreads: c.number('signingThreads', defaultSigningThreads(), { integer: true, max: 1024 }),
    machineAuthenticate: c.fn<MachineAuthenticate>('machineAuthenticate'),
    clock: c.fn<() => number>('clock') ?? Date.now,
    keyRefreshMs: c.number('keyRefreshInterval', KEY_REFRESH_MS, positive),
  }
}

async function kontrolPlugin(app: FastifyInstance, o: KontrolOptions): Promise<void> {
  const { heartbeatSeconds, slackSeconds, graceSeconds, sweepMs, tokenTTL, tokenLeeway, tokenCacheSize, signingThreads, clock, machineAuthenticate, keyRefreshMs } = resolveKontrolOptions(o)
  let storageSpec = o.storage
  if (storageSpec === undefined) {
    // The default file sits in $KITE_HOME beside kite.key: that folder is private (0700), as writeKiteKey makes it.
    const home = kiteHome()
    await mkdir(home, { recursive: true, mode: 0o700 })
    await chmod(home, 0o700)
    storageSpec = `sqlite:${join(home, 'kontrol.db')}`
  }
  const storage = await openStorage(storageSpec)
  app.addHook('onClose', async () => storage.close())
  const log = app.log.child({ plugin: 'kontrol' })
  const keys = await KontrolKeys.load(
    storage,
    o.keyPair ?? { publicKeyFile: process.env.KONTROL_PUBLICKEYFILE, privateKeyFile: process.env.KONTROL_PRIVATEKEYFILE },
    log,
    clock,
  )
  // Kontrol trusts every pair it ever had (retired ones too), so kite.keys of a retired pair can register and be renewed.
  const issuer = app.kite.identity.username
  const trust = (pair: KeyPairRecord): void => app.kiteAuth.addTrustedKey({ publicKey: pair.public, issuer })
  keys.all().forEach(trust)
  // Pairs another Kontrol adds later (Go Kontrol restarted with new key files) are trusted too, as Go's Verify does.
  const keyRefresh = setInterval(() => {
    keys.refresh().then((added) => added.forEach(trust), (err: Error) => app.log.warn({ err: err.message }, 'kontrol: cannot re-read key pairs'))
  }, keyRefreshMs)
  keyRefresh.unref()
  app.addHook('onClose', async () => clearInterval(keyRefresh))

  let url = o.kontrolURL ?? ''
  const signer = new JwtSigner(signingThreads)
  const tokens = new TokenIssuer({ issuer, kontrolURL: () => url, ttlMs: tokenTTL * 1000, leewayMs: tokenLeeway * 1000, cacheSize: tokenCacheSize, clock, signer })
  const registry = new Registry(storage, { heartbeatSeconds, ttlMs: (heartbeatSeconds + graceSeconds) * 1000, slackMs: slackSeconds * 1000, sweepMs, clock, log })
  const service = new KontrolService(storage, registry, keys, tokens)
  addKontrolMethods(app.kite, service, { machineAuthenticate, authenticate: (ctx) => app.kiteAuth.authenticate(ctx) })
  await app.register(kontrolHttpRoutes, { service, registry, heartbeatSeconds: registry.askSeconds })

  app.addHook('onListen', async () => {
    if (url !== '') return
    // Kontrol's own URL, as kontrol-register computes a kite's (https:// when served over TLS).
    url = registerURL(app, 'local')
  })
  app.addHook('onReady', async () => registry.start())
  app.addHook('onClose', async () => registry.stop())
  app.decorate('kontrol', {
    stats: () => ({
      kitesRegistered: registry.size,
      registrations: service.stats.registrations,
      getKites: service.stats.getKites,
      tokensSigned: tokens.signed,
      heartbeatsMissed: registry.missed,
    }),
    storage,
    keys,
    service,
    registry,
    get url() {
      return url
    },
  })
}

/**
 * Makes the app a Kontrol: the kite registry and token authority (spec §7).
 * Register after kiteServer (name it `kontrol`) and kiteAuth.
 */
export const kontrol = fp(kontrolPlugin, { name: 'kontrol', fastify: '5.x', dependencies: ['kite-server', 'kite-auth'] })
export default kontrol
export type { KontrolStorage, KiteRecord, KeyPairRecord, KiteEvent } from './storage/storage.js'
