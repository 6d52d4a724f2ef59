import type { Authenticator } from '../../lib/methods/dispatch.js'
import { kiteError } from '../../lib/errors.js'
import type { Kite } from '../kite-server/kite.js'
import type { KiteRequest } from '../../lib/methods/request.js'
import type { KiteEventMessage } from '../../lib/protocol/kontrol.js'
import { emptyKite } from '../../lib/protocol/kite.js'
import { parseQuery, type KontrolService } from './service.js'

/** Decides whether a `registerMachine` caller may have a kite.key for its claimed username. */
export type MachineAuthenticate = (authType: string, req: KiteRequest) => void | Promise<void>

function requireType(req: KiteRequest, ...types: string[]): string {
  const type = req.authentication?.type ?? ''
  if (!types.includes(type)) throw kiteError('KITE_ERR_KONTROL_AUTH_TYPE', type)
  return req.authentication!.key
}

function firstArg(req: KiteRequest): Record<string, unknown> {
  const [arg] = req.args
  if (arg === null || typeof arg !== 'object' || Array.isArray(arg)) throw kiteError('KITE_ERR_KONTROL_INVALID', 'expected one object argument')
  return arg as Record<string, unknown>
}

/** Watches one connection may hold; each is a storage listener until the connection closes. */
export const MAX_WATCHES_PER_CONNECTION = 100

/** Kontrol's kite methods (spec §7.2): register, getKites, getToken, getKey, and registerMachine when allowed. */
export function addKontrolMethods(kite: Kite, service: KontrolService, o: { machineAuthenticate?: MachineAuthenticate; authenticate?: Authenticator }): void {
  const watchers = new WeakMap<object, number>()
  kite.handle('register', async (req) => {
    const kiteKey = requireType(req, 'kiteKey')
    const identity = { ...(req.connection.remoteKite ?? emptyKite()), username: req.username }
    return service.register(identity, firstArg(req).url, kiteKey, req.connection, 0)
  })

  kite.handle('getKites', async (req) => {
    service.stats.getKites++
    requireType(req, 'kiteKey', 'token')
    const args = firstArg(req)
    const query = parseQuery(args.query)
    const kites = await service.find(query, req.username)
    const watch = args.watchCallback ?? args.watchHandler
    if (typeof watch === 'function' && !req.connection.closed) {
      const count = watchers.get(req.connection) ?? 0
      if (count >= MAX_WATCHES_PER_CONNECTION) throw kiteError('KITE_ERR_KONTROL_INVALID', `too many watches on this connection (limit ${MAX_WATCHES_PER_CONNECTION})`)
      watchers.set(req.connection, count + 1)
      const stop = service.watch(query, req.username, (event: KiteEventMessage) => {
        ;(watch as (e: KiteEventMessage) => void)(event)
      })
      req.connection.once('close', stop)
    }
    return { kites }
  })

  kite.handle('getToken', async (req) => {
    requireType(req, 'kiteKey', 'token')
    const args = firstArg(req)
    return service.token(parseQuery(args), req.username, args.force === true)
  })

  kite.handle('getKey', async (req) => service.publicKey(requireType(req, 'kiteKey')))

  const machineAuthenticate = o.machineAuthenticate
  kite
    .handle('registerMachine', async (req) => {
      // A renewal: a caller holding a valid kite.key gets a fresh one for its own username
      // (e.g. after Kontrol moved: the new key names Kontrol's current URL).
      if (req.authentication?.type === 'kiteKey' && o.authenticate !== undefined) {
        let username: string
        try {
          username = (await o.authenticate({ authentication: req.authentication, kite: req.kite, method: 'registerMachine', connection: req.connection })).username
        } catch (err) {
          throw kiteError('KITE_ERR_KONTROL_INVALID', `cannot authenticate user: ${(err as Error).message}`)
        }
        return service.kiteKeyFor(username)
      }
      // The username is only claimed here, so this needs a deployment's own check.
      if (machineAuthenticate === undefined) throw kiteError('KITE_ERR_KONTROL_INVALID', 'registerMachine needs a valid kite.key here (this Kontrol gives new users no kite.key)')
      const authType = firstArg(req).authType
      if (typeof authType !== 'string') throw kiteError('KITE_ERR_KONTROL_INVALID', 'authType must be a string')
      try {
        await machineAuthenticate(authType, req)
      } catch (err) {
        throw kiteError('KITE_ERR_KONTROL_INVALID', `cannot authenticate user: ${(err as Error).message}`)
      }
      const username = req.kite.username
      if (username === '') throw kiteError('KITE_ERR_KONTROL_INVALID', 'no username')
      return service.kiteKeyFor(username)
    })
    .disableAuthentication()
}
