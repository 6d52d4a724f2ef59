import type { FastifyInstance, FastifyReply } from 'fastify'
import { KiteError } from '../../lib/errors.js'
import { kiteFromWire } from '../../lib/protocol/kite.js'
import type { Registry } from './registry.js'
import type { KontrolService } from './service.js'

function refuse(reply: FastifyReply, status: number, message: string): string {
  reply.code(status).type('text/plain; charset=utf-8')
  return `${JSON.stringify({ err: message })}\n`
}

/**
 * HTTP registration (spec §7.3): `POST <base>/register` with `{url, kite,
 * auth}` and `GET <base>/heartbeat?id=` answering `pong` or `registeragain`.
 * `<base>` is the kite prefix without its trailing `/kite`.
 */
export async function kontrolHttpRoutes(app: FastifyInstance, o: { service: KontrolService; registry: Registry; heartbeatSeconds: number }): Promise<void> {
  const base = app.kite.prefix.replace(/\/kite$/, '')
  app.post(`${base}/register`, { bodyLimit: 64 * 1024 }, async (request, reply) => {
    const body = request.body
    if (body === null || typeof body !== 'object') return refuse(reply, 400, 'wrong register input')
    const { url, kite, auth } = body as Record<string, unknown>
    const identity = kiteFromWire(kite)
    if (identity === null) return refuse(reply, 400, 'wrong register input: kite is missing or invalid')
    if (auth === null || typeof auth !== 'object') return refuse(reply, 400, 'wrong register input: auth is missing')
    const { type, key } = auth as Record<string, unknown>
    if (type !== 'kiteKey') return refuse(reply, 400, `unexpected authentication type: ${String(type).slice(0, 32)}`)
    if (typeof key !== 'string' || key === '') return refuse(reply, 400, 'empty kite key')
    let username: string
    try {
      username = (await app.kiteAuth.authenticate({ authentication: { type, key }, kite: identity, method: 'register', connection: null })).username
    } catch (err) {
      return refuse(reply, 401, `kiteKey: ${(err as Error).message}`)
    }
    try {
      return await o.service.register({ ...identity, username }, url, key, null, o.heartbeatSeconds)
    } catch (err) {
      if (err instanceof KiteError && err.code === 'KITE_ERR_KONTROL_STORAGE') return refuse(reply, 500, 'internal error - register')
      return refuse(reply, 400, (err as Error).message)
    }
  })

  app.get<{ Querystring: { id?: string } }>(`${base}/heartbeat`, async (request, reply) => {
    reply.type('text/plain')
    const id = request.query.id
    if (typeof id !== 'string' || id === '') {
      reply.code(400)
      return 'query id is empty'
    }
    return o.registry.heard(id, null) ? 'pong' : 'registeragain'
  })
}
