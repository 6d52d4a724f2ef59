import replyFrom from '@fastify/reply-from'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { kiteError } from '../../lib/errors.js'
import type { KiteConnection } from '../../lib/connection/connection.js'
import type { KiteRequest } from '../../lib/methods/request.js'
import { kiteServer, type KiteServerOptions } from '../kite-server/index.js'
import { resolveReverseProxyOptions } from './options.js'

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

/** Request headers the proxy sets itself on a forwarded upgrade. */
const OWN_HEADERS = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto'])

function badGateway(socket: Socket, message: string): void {
  const body = JSON.stringify({ error: 'bad gateway', message })
  if (!socket.destroyed) socket.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
}

/**
 * Forwards one WebSocket upgrade to the kite: the request goes to the backend
 * with its path rewritten, and from then on bytes are piped both ways (the
 * backend's 101 and every frame), so the proxy neither parses nor re-frames
 * messages. Pings and closes pass end to end; pipe() carries backpressure.
 */
function pipeUpgrade(request: FastifyRequest, target: URL, open: Set<Socket>): void {
  const socket = request.raw.socket
  open.add(socket)
  // @fastify/websocket keeps the bytes read past the upgrade request (normally none) under its own symbol.
  const headSymbol = Object.getOwnPropertySymbols(request.raw).find((sym) => sym.description === 'ws-head')
  const head = headSymbol === undefined ? undefined : ((request.raw as unknown as Record<symbol, unknown>)[headSymbol] as Buffer | undefined)
  const lines = [`GET ${target.pathname}${target.search} HTTP/1.1`, `Host: ${target.host}`]
  const raw = request.raw.rawHeaders
  let forwardedFor = ''
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    const lower = name.toLowerCase()
    if (lower === 'x-forwarded-for') forwardedFor = raw[i + 1]!
    if (!OWN_HEADERS.has(lower)) lines.push(`${name}: ${raw[i + 1]!}`)
  }
  lines.push(`X-Forwarded-For: ${forwardedFor !== '' ? `${forwardedFor}, ${request.ip}` : request.ip}`, `X-Forwarded-Proto: ${request.protocol}`)
  const port = Number(target.port !== '' ? target.port : target.protocol === 'wss:' ? 443 : 80)
  let connected = false
  const upstream: Socket =
    target.protocol === 'wss:'
      ? tlsConnect({ host: target.hostname, port, servername: target.hostname })
      : netConnect({ host: target.hostname, port })
  const ready = target.protocol === 'wss:' ? 'secureConnect' : 'connect'
  upstream.setNoDelay(true)
  socket.setNoDelay(true)
  upstream.setTimeout(15000, () => {
    if (!connected) {
      badGateway(socket, 'the kite did not answer in time')
      upstream.destroy()
    }
  })
  upstream.once(ready, () => {
    connected = true
    upstream.setTimeout(0)
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`)
    if (head !== undefined && head.length > 0) upstream.write(head)
    upstream.pipe(socket)
    socket.pipe(upstream)
  })
  upstream.on('error', (err) => {
    request.log.debug({ err: err.message, target: target.origin }, 'reverse proxy: kite unreachable')
    if (!connected) badGateway(socket, 'the kite cannot be reached')
    else socket.destroy()
  })
  socket.on('error', (err) => {
    request.log.debug({ err: err.message }, 'reverse proxy: public socket error')
    upstream.destroy()
  })
  socket.once('close', () => {
    open.delete(socket)
    upstream.destroy()
  })
  upstream.once('close', () => {
    if (connected) socket.destroy()
  })
}

async function reverseProxyPlugin(app: FastifyInstance, options: ReverseProxyOptions): Promise<void> {
  const o = resolveReverseProxyOptions(app, options)
  if (!app.hasDecorator('kite')) await app.register(kiteServer, o.kite)
  const kite = app.kite
  const kites = new Map<string, ProxiedKite>()
  const publicHost = o.publicHost
  const scheme = o.scheme
  const timeout = o.requestTimeoutMs

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

  // Upgraded sockets are no longer the HTTP server's to close: ended here when the app closes.
  const piped = new Set<Socket>()
  app.addHook('preClose', async () => {
    for (const socket of piped) socket.destroy()
    piped.clear()
  })

  await app.register(async (scope) => {
    await scope.register(replyFrom, { disableRequestLogging: true, undici: { connections: 256, pipelining: 1, headersTimeout: timeout, bodyTimeout: timeout } })
    // Bodies (XHR sends) are streamed to the kite as they are, never parsed here.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload))

    type Params = { id: string; '*'?: string }
    const lookup = async (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply): Promise<void> => {
      const { id } = request.params
      if (!kites.has(id)) {
        await reply.code(404).type('application/json').send({ error: 'kite not found', message: `no kite is registered with this proxy under id ${id}` })
        return
      }
      const upgrade = request.headers.upgrade?.toLowerCase() === 'websocket' && request.method === 'GET'
      const target = backendTarget(kites.get(id)!.backend, request.raw.url ?? '', id, upgrade)
      if (target === null) {
        await reply.code(400).type('application/json').send({ error: 'bad path', message: 'the path may not leave the kite\'s URL' })
        return
      }
      if (upgrade) {
        // Taken over here, before any handler: the upgrade is forwarded as bytes.
        reply.hijack()
        pipeUpgrade(request, target, piped)
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
    for (const url of ['/proxy/:id', '/proxy/:id/*']) {
      scope.route<{ Params: Params }>({ method: 'GET', url, preHandler: lookup, handler: http })
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
