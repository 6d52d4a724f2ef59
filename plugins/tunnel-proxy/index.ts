import { createSign, verify as verifySignature } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import type { ConnectionSink, KiteConnection } from '../../lib/connection/connection.js'
import { kiteError } from '../../lib/errors.js'
import type { KiteRequest } from '../../lib/methods/request.js'
import { kiteServer, type KiteServerOptions } from '../kite-server/index.js'
import type { AcceptOptions, SessionEndpoint, SessionHost } from '../kite-server/kite.js'
import { kiteTransports } from '../kite-server/transports/routes.js'
import { closeReason } from '../kite-server/tunnel.js'
import { resolveTunnelProxyOptions } from './options.js'

/** Options of the tunnel proxy (`kiteTunnelProxy`), as upstream's tunnelproxy flags (spec §12.1). */
export interface TunnelProxyOptions {
  /** `host[:port]` in the URLs handed out (upstream `-public-host`). Default `127.0.0.1:<listen port>`. */
  publicHost?: string
  /** `http` or `https` (`ws`/`wss` for tunnels). Default: `https` when the server was created with `https`. */
  scheme?: 'http' | 'https'
  /** Version of the `tunnelproxy` kite. Default `0.0.2` (upstream `ProxyVersion`). */
  version?: string
  region?: string
  /**
   * Environment of the `tunnelproxy` kite. Default: the configuration's (`KITE_ENVIRONMENT`, else
   * `unknown`), as upstream's tunnelproxy, so that a Go kite's `RegisterToTunnel` (which looks in
   * its own environment, `unknown` by default) finds it.
   */
  environment?: string
  /** More kite-server options for the `tunnelproxy` kite. */
  kite?: Partial<KiteServerOptions>
  /** RS256 key pair that signs tunnel tokens (upstream `-public-key`/`-private-key`); default: a new pair per start (the tokens never leave this proxy's own round trip). */
  keyPair?: { publicKey: string; privateKey: string }
  /** Seconds a tunnel token is valid. Default 60 (it is used once, within `tunnelTimeoutMs`). */
  tokenTTL?: number
  /** How long the private kite may take to open a tunnel, ms. Default 60000 (upstream: 1 min). */
  tunnelTimeoutMs?: number
  /** Most messages (and bytes) a public client may send before its tunnel is open. Default 1000 and 4 MiB. */
  maxQueued?: { messages?: number; bytes?: number }
}

/** Claims of a tunnel token (spec §5.6). */
export interface TunnelTokenClaims {
  /** The private kite's ID. */
  sub: string
  /** The tunnel number. */
  seq: number
  iat: number
  nbf: number
  exp: number
}

/** `app.kiteTunnelProxy`. */
export interface TunnelProxyDecorator {
  /** Private kites registered right now: their connection to this proxy, by kite ID. */
  readonly kites: ReadonlyMap<string, KiteConnection>
  /** Tunnels open right now. */
  readonly openTunnels: number
  /** Tunnels waiting for their private kite to dial in. */
  readonly pendingTunnels: number
  /** `<scheme>://<publicHost>` once the server listens. */
  publicBase(): string
  /** The public URL of the proxy's own kite, to register with Kontrol: `ws(s)://<publicHost>/kite`, as upstream registers it. */
  kiteURL(): string
  /** Signs a tunnel token (exposed for tests and tools). */
  signToken(claims: TunnelTokenClaims): string
  /** Checks a tunnel token's signature and times; returns its claims or throws. */
  verifyToken(token: string): TunnelTokenClaims
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The tunnel proxy (kiteTunnelProxy). */
    kiteTunnelProxy: TunnelProxyDecorator
  }
}

const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url')
const HEADER = b64({ alg: 'RS256', typ: 'JWT' })
const SEGMENT = /^[^/.?#]{1,64}$/

function signToken(claims: TunnelTokenClaims, privateKey: string): string {
  const input = `${HEADER}.${b64(claims)}`
  return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`
}

/** A token's claims once its signature (RS256, this proxy's key) is checked; times and fields are not checked yet. */
function signedClaims(token: string, publicKey: string): Partial<TunnelTokenClaims> {
  const parts = token.split('.')
  if (parts.length !== 3) throw new Error('malformed token')
  const [h, c, s] = parts as [string, string, string]
  let header: unknown
  let claims: unknown
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString())
    claims = JSON.parse(Buffer.from(c, 'base64url').toString())
  } catch {
    throw new Error('malformed token')
  }
  if (header === null || typeof header !== 'object' || (header as { alg?: unknown }).alg !== 'RS256') throw new Error('token algorithm must be RS256')
  if (!verifySignature('RSA-SHA256', Buffer.from(`${h}.${c}`), publicKey, Buffer.from(s, 'base64url'))) throw new Error('bad token signature')
  if (claims === null || typeof claims !== 'object') throw new Error('malformed token')
  return claims as Partial<TunnelTokenClaims>
}

/** Checks the fields and times of claims whose signature was checked. */
function checkClaims(claims: Partial<TunnelTokenClaims>, now: number): TunnelTokenClaims {
  if (typeof claims.sub !== 'string' || typeof claims.seq !== 'number' || typeof claims.exp !== 'number') throw new Error('token lacks sub, seq or exp')
  if (claims.exp <= now) throw new Error('token is expired')
  if (typeof claims.nbf === 'number' && claims.nbf > now) throw new Error('token is not valid yet')
  return claims as TunnelTokenClaims
}

function verifyToken(token: string, publicKey: string, now: number): TunnelTokenClaims {
  return checkClaims(signedClaims(token, publicKey), now)
}

/** Close codes a side of a tunnel reports when it dropped without a close frame (none, abnormal, TLS failure). */
const NO_CODE = new Set([1005, 1006, 1015])

/** The code and reason to pass on: the ones a side sent, or 1001 (going away) with `dropped` when it sent none. */
function passOn(code: number | undefined, reason: string | undefined, dropped: string): [number, string] {
  return code === undefined || NO_CODE.has(code) ? [1001, dropped] : [code, closeReason(reason ?? '')]
}

/**
 * One public session and, once the private kite dialed in, its tunnel.
 * Closes go through as they were sent: the code and reason the kite closed
 * its tunnel with reach the public client (`c[code,"reason"]` on SockJS, the
 * WebSocket close frame on raw WebSocket), and the public client's reach the
 * kite; a side that drops without a close frame makes the proxy close the
 * other with 1001 (going away).
 */
class Tunnel {
  private privateSink: ConnectionSink | null = null
  private queue: string[] = []
  private queuedBytes = 0
  private ended = false
  timer: NodeJS.Timeout | null = null

  get open(): boolean {
    return this.privateSink !== null && !this.ended
  }

  /** The public side of the pipe. */
  readonly publicEnd: SessionEndpoint

  constructor(
    readonly seq: number,
    readonly kiteID: string,
    private readonly publicSink: ConnectionSink,
    readonly log: Logger,
    private readonly limits: { messages: number; bytes: number },
    private readonly onEnd: (t: Tunnel) => void,
  ) {
    this.publicEnd = {
      log,
      warnRemote: (fields, msg) => log.warn(fields, msg),
      receive: (text) => {
        if (this.ended) return
        if (this.privateSink !== null) {
          this.privateSink.send(text)
          return
        }
        this.queuedBytes += text.length
        if (this.queue.length >= this.limits.messages || this.queuedBytes > this.limits.bytes) {
          this.fail(1009, 'too much sent before the tunnel opened')
          return
        }
        this.queue.push(text)
      },
      transportClosed: (code, reason) => this.end(...passOn(code, reason, 'the client went away')),
      close: (code, reason) => this.fail(code, reason),
    }
  }

  /** The private kite dialed in: flush what the public client sent meanwhile, then pipe. */
  attach(sink: ConnectionSink): SessionEndpoint | null {
    if (this.ended) return null
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.privateSink = sink
    for (const text of this.queue.splice(0)) sink.send(text)
    this.queuedBytes = 0
    return {
      log: this.log,
      warnRemote: (fields, msg) => this.log.warn(fields, msg),
      receive: (text) => {
        if (!this.ended) this.publicSink.send(text)
      },
      transportClosed: (code, reason) => {
        if (this.ended) return
        this.privateSink = null
        this.ended = true
        this.publicSink.close(...passOn(code, reason, 'the kite went away'))
        this.onEnd(this)
      },
      close: (code, reason) => {
        sink.close(code, closeReason(reason))
        if (!this.ended) {
          this.ended = true
          this.publicSink.close(code, closeReason(reason))
          this.onEnd(this)
        }
      },
    }
  }

  /** Ends the public session with a close code (and the tunnel, if open). */
  fail(code: number, reason: string): void {
    if (this.ended) return
    this.publicSink.close(code, closeReason(reason))
    this.end(code, reason)
  }

  private end(code: number, reason: string): void {
    if (this.ended) return
    this.ended = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.privateSink?.close(code, closeReason(reason))
    this.privateSink = null
    this.queue = []
    this.onEnd(this)
  }
}

async function tunnelProxyPlugin(app: FastifyInstance, options: TunnelProxyOptions): Promise<void> {
  const o = resolveTunnelProxyOptions(app, options)
  if (!app.hasDecorator('kite')) await app.register(kiteServer, o.kite)
  const kite = app.kite
  const log = app.log.child({ plugin: 'tunnel-proxy' }) as unknown as Logger
  const keyPair = o.keyPair
  const tokenTTL = o.tokenTTL
  const tunnelTimeoutMs = o.tunnelTimeoutMs
  const limits = o.maxQueued
  const scheme = o.scheme
  const kites = new Map<string, KiteConnection>()
  const pending = new Map<number, Tunnel>()
  const open = new Set<Tunnel>()
  const claimed = new WeakMap<object, Tunnel>()
  let seq = 0

  const publicHost = (): string => {
    if (o.publicHost !== undefined) return o.publicHost
    const address = app.server.address()
    return `127.0.0.1:${address !== null && typeof address === 'object' ? address.port : 0}`
  }
  const publicBase = (): string => `${scheme}://${publicHost()}`

  // `register` (spec §12.1): remember the caller's connection under its kite ID; the argument is ignored.
  kite.handle('register', (req: KiteRequest) => {
    const id = req.kite.id
    if (!SEGMENT.test(id)) throw kiteError('KITE_ERR_ARGUMENT_INVALID', 'the caller\'s kite id cannot be used in a URL')
    const held = kites.get(id)
    if (held !== undefined && held !== req.connection && !held.closed && held.remoteKite?.username !== req.username) {
      throw kiteError('KITE_ERR_ARGUMENT_INVALID', `kite id ${id} is registered by another user`)
    }
    const conn = req.connection
    kites.set(id, conn)
    conn.once('close', () => {
      if (kites.get(id) === conn) kites.delete(id)
    })
    req.log.info({ kite: id }, 'tunnel proxy: kite registered')
    return `${publicBase()}/proxy?kiteID=${encodeURIComponent(id)}`
  })

  const ended = (t: Tunnel): void => {
    if (pending.get(t.seq) === t) pending.delete(t.seq)
    open.delete(t)
  }

  /** A public client arrived for `kiteID`: ask the private kite to dial a tunnel for it. */
  const startTunnel = (kiteID: string, sink: ConnectionSink, request: FastifyRequest | undefined): Tunnel => {
    const n = ++seq
    const tlog = log.child({ tunnel: n, kite: kiteID })
    const tunnel = new Tunnel(n, kiteID, sink, tlog, limits, ended)
    const conn = kites.get(kiteID)
    if (conn === undefined || conn.closed) {
      queueMicrotask(() => tunnel.fail(1011, `no kite ${kiteID} is registered with this proxy`))
      return tunnel
    }
    pending.set(n, tunnel)
    const now = Math.floor(Date.now() / 1000)
    const token = signToken({ sub: kiteID, seq: n, iat: now, nbf: now - 60, exp: now + tokenTTL }, keyPair.privateKey)
    // The public session's own `<server>/<session>` when it has one (as upstream), else fresh ones.
    const m = /\/proxy\/([^/.]+)\/([^/.]+)\/(?:websocket|xhr)/.exec(request?.url ?? '')
    const path = m !== null ? `${m[1]}/${m[2]}` : `${100 + (n % 900)}/${n.toString(16).padStart(20, '0')}`
    const url = `${scheme === 'https' ? 'wss' : 'ws'}://${publicHost()}/tunnel/${path}/websocket?token=${token}`
    tunnel.timer = setTimeout(() => tunnel.fail(1011, 'the kite did not open a tunnel in time'), tunnelTimeoutMs)
    tunnel.timer.unref()
    conn.tell('kite.tunnel', [{ url }], { timeout: tunnelTimeoutMs }).catch((err: Error) => {
      tlog.debug({ err: err.message }, 'tunnel proxy: kite.tunnel failed')
      // A tunnel already open stays (the answer was lost with the kite's proxy connection, not the tunnel).
      if (!tunnel.open) tunnel.fail(1011, `the kite did not open a tunnel: ${err.message}`)
    })
    return tunnel
  }

  const heartbeatMs = kite.options.heartbeatMs
  const disconnectDelayMs = kite.options.disconnectDelayMs
  const frameLimit = kite.options.limits.maxMessageBytes * 2 + 1024

  // The public side: SockJS (WebSocket and XHR polling) and raw WebSocket under /proxy, `?kiteID=` on every request.
  const publicHostSide: SessionHost = {
    prefix: '/proxy',
    options: { heartbeatMs, disconnectDelayMs, backpressure: kite.options.backpressure, clock: kite.options.clock },
    accept(a: AcceptOptions): SessionEndpoint | null {
      if (kite.closing) return null
      const kiteID = (a.request?.query as { kiteID?: string } | undefined)?.kiteID ?? ''
      const tunnel = startTunnel(kiteID, a.sink, a.request)
      return tunnel.publicEnd
    },
  }
  // The private side: the kite dials /tunnel/<srv>/<sess>/websocket?token=…; the token was checked and claimed in onRequest.
  const privateSide: SessionHost = {
    prefix: '/tunnel',
    options: { heartbeatMs, disconnectDelayMs, backpressure: kite.options.backpressure, clock: kite.options.clock },
    accept(a: AcceptOptions): SessionEndpoint | null {
      const tunnel = a.request === undefined ? undefined : claimed.get(a.request.raw)
      if (tunnel === undefined) return null
      const end = tunnel.attach(a.sink)
      if (end !== null) {
        open.add(tunnel)
        tunnel.log.debug('tunnel open')
      }
      return end
    },
  }

  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      const kiteID = (request.query as { kiteID?: unknown }).kiteID
      // Every public request names its kite (SockJS clients keep the query on every URL).
      if (typeof kiteID !== 'string' || kiteID === '') {
        await reply.code(400).send({ error: 'bad request', message: 'kiteID query parameter is required' })
        return reply
      }
      if (!kites.has(kiteID)) {
        await reply.code(404).send({ error: 'kite not found', message: `no kite is registered with this proxy under id ${kiteID}` })
        return reply
      }
    })
    await scope.register(kiteTransports, { kite: publicHostSide, bodyLimit: frameLimit })
  })
  const refuse = async (reply: FastifyReply, why: string): Promise<FastifyReply> => {
    log.debug({ err: why }, 'tunnel proxy: tunnel refused')
    await reply.code(403).send({ error: 'forbidden', message: `invalid tunnel token: ${why}` })
    return reply
  }
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      const path = request.url.split('?')[0]!
      if (!/^\/tunnel\/[^/.]+\/[^/.]+\/websocket$/.test(path) || request.headers.upgrade?.toLowerCase() !== 'websocket') {
        await reply.code(404).send({ error: 'not found', message: 'tunnels are WebSockets at /tunnel/<server>/<session>/websocket?token=' })
        return reply
      }
      const token = (request.query as { token?: unknown }).token
      let claims: Partial<TunnelTokenClaims>
      try {
        if (typeof token !== 'string') throw new Error('no token')
        claims = signedClaims(token, keyPair.publicKey)
      } catch (err) {
        // Not a token of this proxy: nobody's tunnel is concerned (the kite's kite.tunnel fails, or the wait ends).
        return refuse(reply, (err as Error).message)
      }
      try {
        const valid = checkClaims(claims, Math.floor(Date.now() / 1000))
        const tunnel = pending.get(valid.seq)
        if (tunnel === undefined || tunnel.kiteID !== valid.sub) throw new Error('token was used already or its tunnel is gone')
        pending.delete(valid.seq)
        claimed.set(request.raw, tunnel)
      } catch (err) {
        // A token this proxy signed, refused (expired, not valid yet): the public session waiting for it ends with 1008 (policy).
        const waiting = typeof claims.seq === 'number' ? pending.get(claims.seq) : undefined
        if (waiting !== undefined && waiting.kiteID === claims.sub) waiting.fail(1008, `tunnel token refused: ${(err as Error).message}`)
        return refuse(reply, (err as Error).message)
      }
    })
    await scope.register(kiteTransports, { kite: privateSide, bodyLimit: frameLimit })
  })

  app.addHook('preClose', async () => {
    for (const t of [...pending.values(), ...open]) t.fail(1001, 'server shutting down')
  })

  app.decorate('kiteTunnelProxy', {
    kites,
    get openTunnels() {
      return open.size
    },
    get pendingTunnels() {
      return pending.size
    },
    publicBase,
    kiteURL: () => `${scheme === 'https' ? 'wss' : 'ws'}://${publicHost()}${kite.prefix}`,
    signToken: (claims: TunnelTokenClaims) => signToken(claims, keyPair.privateKey),
    verifyToken: (token: string) => verifyToken(token, keyPair.publicKey, Math.floor(Date.now() / 1000)),
  })
}

/**
 * The kite tunnel proxy (upstream `tunnelproxy`, spec §12.1), for kites that
 * cannot accept connections: a kite named `tunnelproxy` whose `register`
 * gives the caller `http://<publicHost>/proxy?kiteID=<id>`. A public client
 * connecting there (SockJS WebSocket or XHR polling, or raw WebSocket) makes
 * the proxy call `kite.tunnel` on the private kite with a one-use token URL;
 * the kite dials it and serves its normal session (authentication included)
 * over that connection, and the proxy pipes messages both ways.
 */
export const kiteTunnelProxy = fp(tunnelProxyPlugin, { name: 'kite-tunnel-proxy', fastify: '5.x' })
export default kiteTunnelProxy
