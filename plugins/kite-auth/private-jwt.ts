import { kiteError } from '../../lib/errors.js'
import fastifyJwt, { type FastifyJWTOptions, type JWT } from '@fastify/jwt'
import type { FastifyInstance } from 'fastify'

/**
 * Registers @fastify/jwt for a kite plugin's own use, encapsulated: inside a
 * child context, so that none of its decorators (`jwt`, `request.user`,
 * `request.<ns>JwtVerify`, `reply.<ns>JwtSign`) reaches the user's app, and
 * the user's own @fastify/jwt, registered before or after, is left as it is.
 * When the user's `app.jwt` exists already, @fastify/jwt puts a namespace
 * into it; that entry is taken out again at once.
 */
export async function privateJwt(app: FastifyInstance, namespace: string, options: Omit<FastifyJWTOptions, 'namespace'>): Promise<JWT> {
  let jwt: JWT | undefined
  await app.register(async (child) => {
    const inherited = child.hasDecorator('jwt') ? (child.jwt as unknown as Record<string, JWT>) : null
    const before = inherited === null ? undefined : inherited[namespace]
    await child.register(fastifyJwt, { ...options, namespace } as FastifyJWTOptions)
    const holder = child.jwt as unknown as Record<string, JWT>
    jwt = holder[namespace]
    if (inherited !== null) {
      if (before === undefined) delete inherited[namespace]
      else inherited[namespace] = before
    }
  })
  if (jwt === undefined) throw kiteError('KITE_ERR_AUTH_SETUP', `@fastify/jwt did not register namespace ${namespace}`)
  return jwt
}
