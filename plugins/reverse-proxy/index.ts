import replyFrom from '@fastify/reply-from'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import WebSocket from 'ws'
import { kiteError } from '../../lib/errors.js'
import type { KiteConnection } from '../../lib/connection/connection.js'
import type { KiteRequest } from '../../lib/methods/request.js'
import { kiteServer, type KiteServerOptions } from '../kite-server/index.js'
import { startLivenessSweep, type WatchedSocket } from '../kite-server/transports/websocket.js'
import { WriteGate, resolveBackpressure, type BackpressureOptions } from '../../lib/connection/backpressure.js'
import { wsCloseCode } from '../kite-server/transports/sockjs-frames.js'

/** Options of the reverse proxy (`kiteReverseProxy`), as upstream's reverseproxy flags (spec §12.2). */
export interface ReverseProxyOptions {
  /** Host in the URLs handed to kites (upstream `-publicHost`). Default `127.0.0.1`. */
  publicHost?: string
  /** Port in those URLs (upstream `-publicPort`). Default: the port the server listens on. */
  publicPort?: number
  /** `http` or `https` in those URLs. Default: `https` when the Fastify server was created with `https`, else `http`. */
  scheme?: 'http' | 'https'
  /** Version of the `proxy` kite (when this plugin registers kite-server itself). Default `0.0.1`. */
  version?: string
  /** Region of the `proxy` kite. Default `unknown`. */
  region?: string
  /** Environment of the `proxy` kite. Default `development` (upstream `-env`). */
  environment?: string
  /** More kite-server options for the `proxy` kite (username, id, limits…). */
  kite?: Partial<KiteServerOptions>
  /** How long a proxied HTTP request (an XHR poll) may take, ms. Default 60000. */
  requestTimeoutMs?: number
  /** Most bytes of one proxied WebSocket message. Default 2 MiB + 1 KiB (a 1 MiB kite message framed by SockJS). */
  maxMessageBytes?: number
  /** Ping period of the public WebSockets; a socket that misses a ping is closed. Default 30000 ms. */
  heartbeatMs?: number
  /** Bytes waiting to be written to one side above which reading from the other side pauses (default 4 MiB). */
  maxBufferedBytes?: number
  /** How long they may stay above it before both sockets are closed (1008), ms. Default 10000. */
  backpressureGraceMs?: number
}

/** One kite reachable through the proxy. */
export interface ProxiedKite {
  /** The kite's ID (the path segment after `/proxy/`). */
  id: string
  /** The URL the kite registered with the proxy (its own, private, kite URL). */
  backend: URL
  /** The kite's connection to the proxy: the entry lives as long as it does. */
  connection: KiteConnection
}

/** `app.kiteReverseProxy`. */
export interface ReverseProxyDecorator {
  /** The kites registered right now, by kite ID. */
  readonly kites: ReadonlyMap<string, ProxiedKite>
  /** `<scheme>://<publicHost>:<publicPort>`, once the server listens. */
  publicBase(): string
  /** The public URL of the proxy's own kite (`<publicBase>/kite`), to register with Kontrol. */
  kiteURL(): string
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The reverse proxy (kiteReverseProxy). */
    kiteReverseProxy: ReverseProxyDecorator
  }
}

/** A kite ID as a path segment: what Go and our kites use (UUIDs), nothing that could change the path. */
const KITE_ID = /^[A-Za-z0-9._~-]{1,128}$/

/** Request headers not forwarded to a backend WebSocket (the ws client makes its own handshake). */
const HOP_HEADERS = new Set(['host', 'connection', 'upgrade', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-accept', 'content-length', 'transfer-encoding', 'keep-alive'])

/** Where `/proxy/<id>/<rest>` goes: the backend URL plus `/<rest>`, the query kept. Null for a path that leaves the backend's (`..`). */
export function backendTarget(backend: URL, rawUrl: string, id: string, websocket: boolean): URL | null {
  const q = rawUrl.indexOf('?')
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q)
  const prefix = `/proxy/${id}`
  let rest = path.length > prefix.length ? path.slice(prefix.length + 1) : ''
  let decoded: string
  try {
    decoded = decodeURIComponent(rest)
  } catch {
    return null
  }
  if (decoded.split(/[/\\]/).includes('..')) return null
  const target = new URL(backend.href)
  if (rest.startsWith('/')) rest = rest.replace(/^\/+/, '')
  target.pathname = target.pathname.endsWith('/') ? target.pathname + rest : `${target.pathname}/${rest}`
  target.search = q === -1 ? '' : rawUrl.slice(q)
  target.hash = ''
  if (websocket) target.protocol = target.protocol === 'https:' || target.protocol === 'wss:' ? 'wss:' : 'ws:'
  else target.protocol = target.protocol === 'wss:' || target.protocol === 'https:' ? 'https:' : 'http:'
  return target
}

function parseBackend(value: unknown): URL {
  if (typeof value !== 'string' || value === '') throw kiteError('KITE_ERR_ARGUMENT_INVALID', 'register needs the kite URL (a string) as its argument')
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw kiteError('KITE_ERR_ARGUMENT_INVALID', `invalid kite URL: ${value}`)
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) throw kiteError('KITE_ERR_ARGUMENT_INVALID', `kite URL must be http(s) or ws(s): ${value}`)
  url.search = ''
  url.hash = ''
  return url
}

/** Pipes one public WebSocket to the kite's backend and back, until either side closes. */
function pipeWebSocket(source: WebSocket, target: URL, request: FastifyRequest, watched: Set<WatchedSocket>, maxPayload: number, backpressure: BackpressureOptions): void {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) {
    if (typeof value === 'string' && !HOP_HEADERS.has(name)) headers[name] = value
  }
  const forwarded = request.headers['x-forwarded-for']
  headers['x-forwarded-for'] = typeof forwarded === 'string' && forwarded !== '' ? `${forwarded}, ${request.ip}` : request.ip
  headers['x-forwarded-proto'] = request.protocol
  const protocol = request.headers['sec-websocket-protocol']
  const upstream = new WebSocket(target, typeof protocol === 'string' ? protocol.split(',').map((p) => p.trim()) : [], { headers, maxPayload, perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 15000 })
  // A side that reads slowly pauses reading from the other side; one that stays behind for the grace period ends both.
  const gate = (to: WebSocket, from: WebSocket): WriteGate =>
    new WriteGate(backpressure, {
      queued: () => to.bufferedAmount,
      pause: () => from.pause(),
      resume: () => from.resume(),
      overflow: () => finish(1008, 'peer does not read: too much data queued'),
    })
  const toSource = gate(source, upstream)
  const toUpstream = gate(upstream, source)
  const entry: WatchedSocket = { ws: source, alive: true, sockjs: false, gate: toSource }
  watched.add(entry)
  const early: Array<{ data: WebSocket.RawData; binary: boolean }> = []
  let earlyBytes = 0
  let done = false
  const finish = (code: number, reason: string): void => {
    if (done) return
    done = true
    watched.delete(entry)
    toSource.dispose()
    toUpstream.dispose()
    const c = wsCloseCode(code)
    if (source.readyState === WebSocket.OPEN) source.close(c, reason)
    else if (source.readyState === WebSocket.CONNECTING) source.terminate()
    if (upstream.readyState === WebSocket.OPEN) upstream.close(c, reason)
    else if (upstream.readyState === WebSocket.CONNECTING) upstream.terminate()
  }
  source.on('message', (data, binary) => {
    entry.alive = true
    if (upstream.readyState === WebSocket.OPEN) {
      upstream.send(data, { binary })
      toUpstream.check()
      return
    }
    earlyBytes += Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : (data as Buffer).length
    if (earlyBytes > maxPayload) {
      finish(1009, 'too much sent before the kite answered')
      return
    }
    early.push({ data, binary })
  })
  source.on('pong', () => {
    entry.alive = true
  })
  upstream.on('open', () => {
    for (const m of early.splice(0)) upstream.send(m.data, { binary: m.binary })
  })
  upstream.on('message', (data, binary) => {
    if (source.readyState === WebSocket.OPEN) {
      source.send(data, { binary })
      toSource.check()
    }
  })
  source.on('close', (code, reason) => finish(code, reason.toString()))
  upstream.on('close', (code, reason) => finish(code, reason.toString()))
  source.on('error', (err) => request.log.debug({ err }, 'reverse proxy: public WebSocket error'))
  upstream.on('error', (err) => {
    request.log.debug({ err: err.message, target: target.origin }, 'reverse proxy: backend WebSocket error')
    finish(1011, 'kite unreachable')
  })
  upstream.on('unexpected-response', (_req, res) => {
    request.log.debug({ status: res.statusCode, target: target.origin }, 'reverse proxy: backend refused the WebSocket')
    res.resume()
    finish(1011, `kite answered ${res.statusCode}`)
  })
}

async function reverseProxyPlugin(app: FastifyInstance, o: ReverseProxyOptions): Promise<void> {
  if (!app.hasDecorator('kite')) {
    await app.register(kiteServer, { name: 'proxy', version: o.version ?? '0.0.1', region: o.region, environment: o.environment ?? 'development', ...o.kite })
  }
  const kite = app.kite
  const kites = new Map<string, ProxiedKite>()
  const publicHost = o.publicHost ?? '127.0.0.1'
  const scheme = o.scheme ?? (app.initialConfig.https !== undefined && app.initialConfig.https !== false ? 'https' : 'http')
  const maxPayload = o.maxMessageBytes ?? 2 * 1024 * 1024 + 1024
  const timeout = o.requestTimeoutMs ?? 60000
  const backpressure = resolveBackpressure('kite-reverse-proxy', { maxBufferedBytes: o.maxBufferedBytes, graceMs: o.backpressureGraceMs })

  const publicBase = (): string => {
    let port = o.publicPort
    if (port === undefined || port === 0) {
      const address = app.server.address()
      port = address !== null && typeof address === 'object' ? address.port : 0
    }
    return `${scheme}://${publicHost.includes(':') && !publicHost.startsWith('[') ? `[${publicHost}]` : publicHost}:${port}`
  }

  // `register [url]` (spec §12.2): remember the caller's kite URL under its kite ID while its connection lives.
  kite.handle('register', (req: KiteRequest) => {
    const backend = parseBackend(req.args[0])
    const id = req.kite.id
    if (!KITE_ID.test(id)) throw kiteError('KITE_ERR_ARGUMENT_INVALID', 'the caller\'s kite id cannot be used in a URL path')
    const conn = req.connection
    const held = kites.get(id)
    if (held !== undefined && held.connection !== conn && !held.connection.closed) {
      // A second connection may take over an ID only for the same user (a kite reconnecting).
      if (held.connection.remoteKite?.username !== req.username) throw kiteError('KITE_ERR_ARGUMENT_INVALID', `kite id ${id} is registered by another user`)
    }
    kites.set(id, { id, backend, connection: conn })
    conn.once('close', () => {
      if (kites.get(id)?.connection === conn) {
        kites.delete(id)
        app.log.debug({ kite: id }, 'reverse proxy: kite gone')
      }
    })
    req.log.info({ kite: id, backend: backend.href }, 'reverse proxy: kite registered')
    return `${publicBase()}/proxy/${id}`
  })

  app.decorate('kiteReverseProxy', {
    kites,
    publicBase,
    kiteURL: () => `${publicBase()}${kite.prefix}`,
  })

  await app.register(async (scope) => {
    await scope.register(replyFrom, { disableRequestLogging: true, undici: { connections: 256, pipelining: 1, headersTimeout: timeout, bodyTimeout: timeout } })
    // Bodies (XHR sends) are streamed to the kite as they are, never parsed here.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
    const watched = new Set<WatchedSocket>()
    const sweep = startLivenessSweep(watched, o.heartbeatMs ?? 30000)
    scope.addHook('onClose', async () => clearInterval(sweep))

    type Params = { id: string; '*'?: string }
    const lookup = async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply): Promise<void> => {
      const { id } = request.params
      if (!kites.has(id)) {
        await reply.code(404).type('application/json').send({ error: 'kite not found', message: `no kite is registered with this proxy under id ${id}` })
        return
      }
      if (backendTarget(kites.get(id)!.backend, request.raw.url ?? '', id, false) === null) {
        await reply.code(400).type('application/json').send({ error: 'bad path', message: 'the path may not leave the kite\'s URL' })
      }
    }
    const http = async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply): Promise<void> => {
      const entry = kites.get(request.params.id)
      const target = entry === undefined ? null : backendTarget(entry.backend, request.raw.url ?? '', request.params.id, false)
      if (target === null) {
        await reply.code(404).send({ error: 'kite not found' })
        return
      }
      const source = `${target.origin}${target.pathname}`
      return reply.from(source, {
        timeout,
        rewriteRequestHeaders: (req, headers) => {
          const forwarded = headers['x-forwarded-for']
          return { ...headers, 'x-forwarded-for': typeof forwarded === 'string' && forwarded !== '' ? `${forwarded}, ${req.ip}` : req.ip, 'x-forwarded-proto': req.protocol }
        },
        onError: (rep, { error }) => {
          request.log.debug({ err: error.message, kite: request.params.id }, 'reverse proxy: kite unreachable')
          void rep.code(502).type('application/json').send({ error: 'bad gateway', message: `kite ${request.params.id} cannot be reached` })
        },
      })
    }
    const ws = (socket: WebSocket, request: FastifyRequest<{ Params: Params }>): void => {
      const entry = kites.get(request.params.id)
      const target = entry === undefined ? null : backendTarget(entry.backend, request.raw.url ?? '', request.params.id, true)
      if (target === null) {
        socket.close(4404, 'kite not found')
        return
      }
      pipeWebSocket(socket, target, request, watched, maxPayload, backpressure)
    }
    for (const url of ['/proxy/:id', '/proxy/:id/*']) {
      scope.route<{ Params: Params }>({ method: 'GET', url, preHandler: lookup, handler: http, wsHandler: ws })
      scope.route<{ Params: Params }>({ method: ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url, preHandler: lookup, handler: http })
    }
  })
}

/**
 * The kite reverse proxy (upstream `reverseproxy`, spec §12.2): a kite named
 * `proxy` whose `register` method gives the caller a public URL
 * `<scheme>://<publicHost>:<publicPort>/proxy/<kiteID>`; HTTP requests
 * (SockJS XHR polling) and WebSockets (SockJS and raw) to that URL are
 * forwarded to the kite's own URL. TLS ends here (create the Fastify app with
 * `https`); backends stay plain.
 */
export const kiteReverseProxy = fp(reverseProxyPlugin, { name: 'kite-reverse-proxy', fastify: '5.x' })
export default kiteReverseProxy
