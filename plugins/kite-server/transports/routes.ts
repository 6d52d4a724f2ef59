import { randomInt } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { SessionHost } from '../kite.js'
import { serveWebSocket, startLivenessSweep, type WatchedSocket } from './websocket.js'
import { XhrSessions } from './xhr.js'

const NO_CACHE = 'no-store, no-cache, must-revalidate, max-age=0'
const SEGMENT = '^[^/.]+$'

interface SessionParams {
  server: string
  session: string
}

function cors(request: FastifyRequest, reply: FastifyReply): void {
  const origin = request.headers.origin
  reply.header('Access-Control-Allow-Origin', typeof origin === 'string' && origin !== 'null' ? origin : '*')
  reply.header('Access-Control-Allow-Credentials', 'true')
}

function preflight(methods: string) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    cors(request, reply)
    const asked = request.headers['access-control-request-headers']
    if (typeof asked === 'string') reply.header('Access-Control-Allow-Headers', asked)
    reply.header('Access-Control-Allow-Methods', methods)
    reply.header('Cache-Control', 'public, max-age=31536000')
    reply.header('Access-Control-Max-Age', '31536000')
    reply.code(204).send()
  }
}

/**
 * Registers the kite's transports under its prefix (spec §1.2): SockJS
 * (`info`, websocket, `xhr` + `xhr_send`) and raw WebSocket on the prefix
 * itself and on `<prefix>/websocket`. Runs inside its own encapsulated
 * context so the body parser it needs does not leak into the app.
 */
export async function kiteTransports(app: FastifyInstance, opts: { kite: SessionHost; bodyLimit: number }): Promise<void> {
  const { kite } = opts
  const prefix = kite.prefix
  const watched = new Set<WatchedSocket>()
  const xhr = new XhrSessions(kite, kite.options.heartbeatMs, kite.options.disconnectDelayMs, kite.options.backpressure)
  const sweep = startLivenessSweep(watched, kite.options.heartbeatMs)

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: opts.bodyLimit }, (_req, body, done) => done(null, body))

  const welcome = async (_request: FastifyRequest, reply: FastifyReply): Promise<string> => {
    reply.type('text/plain;charset=UTF-8')
    return 'Welcome to SockJS!\n'
  }
  for (const url of [prefix, `${prefix}/`]) {
    app.route({ method: 'GET', url, handler: welcome, wsHandler: (ws, req) => serveWebSocket(kite, watched, ws, req, false) })
  }
  app.get(`${prefix}/websocket`, { websocket: true }, (ws, req) => serveWebSocket(kite, watched, ws, req, false))

  app.get(`${prefix}/info`, async (request, reply) => {
    cors(request, reply)
    reply.header('Cache-Control', NO_CACHE)
    reply.type('application/json; charset=UTF-8')
    return `${JSON.stringify({ websocket: true, cookie_needed: false, origins: ['*:*'], entropy: randomInt(2 ** 31 - 1) })}\n`
  })
  app.options(`${prefix}/info`, preflight('OPTIONS, GET'))

  const params = { type: 'object', properties: { server: { type: 'string', pattern: SEGMENT }, session: { type: 'string', pattern: SEGMENT } } }
  app.get<{ Params: SessionParams }>(`${prefix}/:server/:session/websocket`, { websocket: true, schema: { params } }, (ws, req) =>
    serveWebSocket(kite, watched, ws, req, true),
  )
  app.post<{ Params: SessionParams }>(`${prefix}/:server/:session/xhr`, { schema: { params } }, async (request, reply) => {
    cors(request, reply)
    reply.header('Cache-Control', NO_CACHE)
    reply.type('application/javascript; charset=UTF-8')
    return xhr.poll(request, reply, request.params.session)
  })
  app.post<{ Params: SessionParams }>(`${prefix}/:server/:session/xhr_send`, { schema: { params } }, async (request, reply) => {
    cors(request, reply)
    reply.header('Cache-Control', NO_CACHE)
    reply.type('text/plain; charset=UTF-8')
    return xhr.send(request.params.session, request.body, reply)
  })
  app.options(`${prefix}/:server/:session/xhr`, preflight('OPTIONS, POST'))
  app.options(`${prefix}/:server/:session/xhr_send`, preflight('OPTIONS, POST'))

  app.addHook('onClose', async () => {
    clearInterval(sweep)
    xhr.closeAll()
  })
}
