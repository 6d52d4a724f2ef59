import { readFile } from 'node:fs/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { kontrolRegister } from '../../plugins/kontrol-register/index.js'
import { UsageError } from '../command.js'
import { ownKiteKey } from '../util.js'
import { kiteError } from '../../lib/errors.js'

/** Flags both proxy commands share (upstream's `-ip`, `-port`, `-cert`, `-key`, `-region`, `-env`). */
export const commonProxyFlags = {
  host: { type: 'string' },
  port: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  region: { type: 'string' },
  env: { type: 'string' },
  'no-register': { type: 'boolean' },
  json: { type: 'boolean' },
  version: { type: 'boolean' },
} as const

export function portOf(value: string | undefined, fallback: number, name: string): number {
  const port = Number(value ?? fallback)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--${name} must be a port number`)
  return port
}

/** A Fastify app, over https when both --cert and --key are given. Logs go to stderr. */
export async function proxyApp(values: { cert?: string; key?: string }, env: NodeJS.ProcessEnv): Promise<FastifyInstance> {
  if ((values.cert === undefined) !== (values.key === undefined)) throw new UsageError('--cert and --key go together')
  const logger = { level: env.KITE_LOG_LEVEL?.toLowerCase() === 'debug' ? 'debug' : 'warn', stream: process.stderr }
  if (values.cert !== undefined && values.key !== undefined) {
    const [cert, key] = await Promise.all([readFile(values.cert, 'utf8'), readFile(values.key, 'utf8')])
    return Fastify({ logger, https: { cert, key }, return503OnClosing: false }) as unknown as FastifyInstance
  }
  return Fastify({ logger, return503OnClosing: false }) as unknown as FastifyInstance
}

/** Authentication from $KITE_HOME/kite.key, and registration with its Kontrol unless --no-register. */
export async function authAndRegister(app: FastifyInstance, env: NodeJS.ProcessEnv, register: boolean, url: () => string): Promise<boolean> {
  const own = await ownKiteKey(env)
  if (own === null) throw kiteError('KITE_ERR_CLI_PROXY_NO_KITEKEY')
  await app.register(kiteAuth, { kiteKey: own.key })
  if (!register) return false
  const kontrolURL = env.KITE_KONTROL_URL !== undefined && env.KITE_KONTROL_URL !== '' ? env.KITE_KONTROL_URL : undefined
  await app.register(kontrolRegister, { kiteKey: own.key, kontrolURL, url })
  return true
}

/** Runs until SIGINT or SIGTERM, then closes the app. */
export async function runUntilSignal(app: FastifyInstance): Promise<void> {
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  await app.close()
}
