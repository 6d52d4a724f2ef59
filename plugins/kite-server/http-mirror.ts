import { createRequire } from 'node:module'
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaCompiler } from 'fastify'
import type { Logger } from 'pino'
import { KiteConnection } from '../../lib/connection/connection.js'
import { kiteError, toWire, type WireError } from '../../lib/errors.js'
import type { KiteMethod } from '../../lib/methods/method.js'
import { argsJsonOf, KITE_CALLBACK, type SerializerCompiler, type ValidatorCompiler } from '../../lib/methods/schema.js'
import { defaultValidatorCompiler } from '../../lib/methods/schema-compiler.js'
import type { KiteAuth } from '../../lib/protocol/envelope.js'
import { emptyKite } from '../../lib/protocol/kite.js'
import type { Kite } from './kite.js'

interface FastifySymbols {
  kSchemaController: symbol
  kOptions: symbol
}

interface SchemaControllerLike {
  setupValidator(serverOptions: unknown): void
  validatorCompiler?: ValidatorCompiler
  setupSerializer?(serverOptions: unknown): void
  serializerCompiler?: SerializerCompiler
}

let symbols: FastifySymbols | null | undefined

function fastifySymbols(): FastifySymbols | null {
  if (symbols === undefined) {
    try {
      const require = createRequire(import.meta.url)
      symbols = createRequire(require.resolve('fastify'))('./lib/symbols.js') as FastifySymbols
    } catch {
      symbols = null
    }
  }
  return symbols
}

/**
 * The validator compiler Fastify uses for this app's routes: set up by the
 * app's schema controller exactly as a route with a body schema sets it up,
 * so the app's `ajv` options (customOptions, plugins, formats), its
 * `addSchema` schemas and a compiler set by `setValidatorCompiler` (TypeBox,
 * Zod…) all apply to kite methods.
 */
export function appValidatorCompiler(app: FastifyInstance): ValidatorCompiler {
  const controller = schemaController(app)
  if (controller !== null && typeof controller.it.setupValidator === 'function') {
    controller.it.setupValidator(controller.serverOptions)
    if (typeof controller.it.validatorCompiler === 'function') return controller.it.validatorCompiler
  }
  return (app.validatorCompiler as ValidatorCompiler | undefined) ?? defaultValidatorCompiler()
}

/** The app's schema controller (Fastify internals, reached through its symbols) and its server options; null when out of reach. */
function schemaController(app: FastifyInstance): { it: SchemaControllerLike; serverOptions: unknown } | null {
  const s = fastifySymbols()
  if (s === null) return null
  const holder = app as unknown as Record<symbol, unknown>
  const it = holder[s.kSchemaController] as SchemaControllerLike | undefined
  return it === undefined ? null : { it, serverOptions: holder[s.kOptions] }
}

/**
 * The serializer compiler Fastify uses for this app's response schemas (fast-json-stringify
 * unless the app set another with `setSerializerCompiler`), set up as a route with a response
 * schema sets it up; null when it cannot be had (results are then encoded as any other).
 */
export function appSerializerCompiler(app: FastifyInstance): SerializerCompiler | null {
  const controller = schemaController(app)
  if (controller !== null && typeof controller.it.setupSerializer === 'function') {
    controller.it.setupSerializer(controller.serverOptions)
    if (typeof controller.it.serializerCompiler === 'function') return controller.it.serializerCompiler
  }
  return (app.serializerCompiler as SerializerCompiler | undefined) ?? null
}

/** A call made over HTTP: the kite pipeline's answer comes back here instead of over a socket. */
class HttpCall extends KiteConnection {
  answer: (error: unknown, result: unknown, requestId: string) => void = () => {}

  override respond(_responseId: number, error: unknown, result: unknown, requestId = ''): void {
    this.answer(error, result, requestId)
  }
}

const closedSink = { send: (): void => {}, close: (): void => {} }

/**
 * Credentials of an HTTP call: `Authorization: Bearer <token>` is a kite
 * `token`; `Kite-Key: <kite.key>` (or `Authorization: KiteKey <kite.key>`) a
 * `kiteKey`; `Authorization: <type> <key>` any other authenticator's type.
 */
export function httpAuthentication(headers: FastifyRequest['headers']): KiteAuth | null {
  const kiteKey = headers['kite-key']
  if (typeof kiteKey === 'string' && kiteKey !== '') return { type: 'kiteKey', key: kiteKey.trim() }
  const header = headers.authorization
  if (typeof header !== 'string') return null
  const space = header.indexOf(' ')
  if (space <= 0) return null
  const scheme = header.slice(0, space)
  const key = header.slice(space + 1).trim()
  if (/^bearer$/i.test(scheme)) return { type: 'token', key }
  if (/^kitekey$/i.test(scheme)) return { type: 'kiteKey', key }
  return { type: scheme, key }
}

/** The HTTP status for a kite error type. */
function statusOf(type: string): number {
  switch (type) {
    case 'argumentError':
      return 400
    case 'authenticationError':
      return 401
    case 'methodNotFound':
      return 404
    case 'requestLimitError':
      return 429
    default:
      return 500
  }
}

const errorSchema = {
  type: 'object',
  properties: {
    error: { type: 'object', properties: { type: { type: 'string' }, message: { type: 'string' }, code: { type: 'string' }, id: { type: 'string' } } },
  },
}

/** A schema for fast-json-stringify and OpenAPI: callback markers become described placeholders. */
function forHttp(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object') return schema
  if (Array.isArray(schema)) return schema.map(forHttp)
  const s = schema as Record<string, unknown>
  if (s[KITE_CALLBACK] === true) return { description: 'a callback: only over a kite connection', [KITE_CALLBACK]: true }
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(s)) out[k] = k === 'properties' || k === 'items' || k === 'prefixItems' || typeof v === 'object' ? forHttp(v) : v
  return out
}

/** Fastify must not validate the body itself: the kite pipeline does, after authentication, with the method's compiled schema. */
const noValidation: FastifySchemaCompiler<unknown> = () => () => true

/**
 * Returns the function that adds a method's HTTP mirror: `POST
 * <prefix>/methods/<name>` with body `{ "args": [...] }` runs the method
 * through the same pipeline as a kite call (authentication, schema, pre/post
 * handlers) and answers `{ result }`, or `{ error }` with a status: 400
 * argumentError, 401 authenticationError, 404 methodNotFound, 429
 * requestLimitError, 500 otherwise.
 */
export function httpMirror(app: FastifyInstance, kite: Kite): (method: KiteMethod) => void {
  const mirrored = new Set<string>()
  return (method) => {
    if (mirrored.has(method.name)) return
    mirrored.add(method.name)
    const name = method.name
    const args = method.schema?.args === undefined ? { type: 'array' } : forHttp(argsJsonOf(method.schema.args))
    const response: Record<string, unknown> = { '4xx': errorSchema, '5xx': errorSchema }
    if (method.schema?.result !== undefined) response['200'] = { type: 'object', properties: { result: forHttp(method.schema.result) } }
    app.post(
      `${kite.prefix}/methods/${name}`,
      {
        schema: {
          summary: `kite method ${name}`,
          ...(method.description !== '' ? { description: method.description } : {}),
          tags: ['kite'],
          body: { type: 'object', required: ['args'], properties: { args } },
          response,
          ...(method.authenticate && kite.options.httpSecurity !== null ? { security: kite.options.httpSecurity } : {}),
        },
        validatorCompiler: noValidation,
      },
      async (request: FastifyRequest, reply: FastifyReply) => {
        const answer = (status: number, error: WireError): FastifyReply => reply.code(status).send({ error })
        const current = kite.methods.methods.get(name)
        if (current === undefined) return answer(404, toWire(kiteError('KITE_ERR_METHOD_NOT_FOUND', name)))
        const body = request.body as { args?: unknown } | null | undefined
        const withArgs = body !== null && typeof body === 'object' ? body.args : undefined
        if (!Array.isArray(withArgs)) return answer(400, toWire(kiteError('KITE_ERR_ARGUMENT_INVALID', 'the body must be {"args": [...]}')))
        const callbacks = current.compiledSchema?.callbackPaths ?? []
        if (callbacks.length > 0) {
          const where = callbacks.map((p) => `args/${p.join('/')}`).join(', ')
          return answer(400, toWire(kiteError('KITE_ERR_ARGUMENT_INVALID', `${name} takes callbacks (${where}), which HTTP cannot carry: call it over a kite connection`)))
        }
        const { error, result, requestId } = await callOverHttp(kite, request, name, withArgs)
        if (error !== null) {
          const wire = toWire(error, requestId)
          return answer(statusOf(wire.type), wire)
        }
        return reply.send({ result: result ?? null })
      },
    )
  }
}

function callOverHttp(kite: Kite, request: FastifyRequest, method: string, withArgs: unknown[]): Promise<{ error: unknown; result: unknown; requestId: string }> {
  return new Promise((resolve) => {
    const conn = new HttpCall({
      sink: closedSink,
      handler: kite.methods,
      limits: kite.options.limits,
      log: request.log as unknown as Logger,
      localKite: kite.identity,
      transport: 'http',
      remoteAddress: request.ip,
    })
    conn.remoteKite = { ...emptyKite(), name: 'http' }
    conn.answer = (error, result, requestId) => {
      resolve({ error: error ?? null, result, requestId })
      conn.close(1000, 'http call answered')
    }
    kite.methods.handleCall(conn, { method, args: [{ authentication: httpAuthentication(request.headers), withArgs }], responseId: 1 })
  })
}
