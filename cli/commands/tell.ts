import type { KiteClient } from '../../lib/client/client.js'
import { poolThroughKontrol } from '../../lib/client/finder.js'
import { STRATEGIES, type StrategyName } from '../../lib/client/strategies.js'
import { EXIT, UsageError, type Command } from '../command.js'
import { connect, millis, ownKiteKey, parse, requireKiteKey } from '../util.js'
import { findKites, queryFromPath } from './query.js'
import { kiteError } from '../../lib/errors.js'

/** Calls `method` on one of the kites matching the query, through a pool (failover, the chosen strategy). */
export async function tellThroughPool(target: string, method: string, args: unknown[], env: NodeJS.ProcessEnv, o: { timeout: number; strategy: StrategyName; idempotent: boolean; kontrol?: string }): Promise<unknown> {
  const { key, claims } = await requireKiteKey(env)
  const url = o.kontrol ?? (env.KITE_KONTROL_URL || undefined) ?? claims.kontrolURL
  if (url === undefined || url === '') throw kiteError('KITE_ERR_CLI_NO_KONTROL_URL')
  const kite = { name: 'kite-cli', version: '1.0.0', username: claims.sub }
  const kontrol = await connect(url, { auth: { type: 'kiteKey', key }, kite })
  // One call: no watch, no refresh; each kite is tried at most once.
  const pool = poolThroughKontrol(kontrol, queryFromPath(target, claims), { strategy: o.strategy, idempotent: o.idempotent, timeout: o.timeout, watch: false, refreshInterval: 0, maxAttempts: 5, client: { kite } })
  try {
    return await pool.call(method, args, { timeout: o.timeout })
  } finally {
    await pool.close()
    await kontrol.close()
  }
}

/**
 * A positional argument: `cb` is a callback that prints each call it gets
 * as one JSON line (its arguments array); anything else is JSON when it
 * parses, else the string itself (`'"cb"'` passes the string "cb").
 */
export function argument(text: string, out: (line: string) => void): unknown {
  if (text === 'cb') return (...args: unknown[]) => out(JSON.stringify(args, (_k, v: unknown) => (typeof v === 'function' ? '[Function]' : v)))
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** A client for a URL (with the kite.key when there is one) or for the first kite a query finds (with its token). */
export async function dialTarget(target: string, env: NodeJS.ProcessEnv, timeout: number, kontrol?: string): Promise<KiteClient> {
  if (target.startsWith('/')) {
    const { claims } = await requireKiteKey(env)
    const [first] = await findKites(env, queryFromPath(target, claims), kontrol)
    if (first === undefined) throw kiteError('KITE_ERR_POOL_NO_KITES', target)
    return connect(first.url, { auth: { type: 'token', key: first.token }, kite: { username: claims.sub }, timeout })
  }
  const own = await ownKiteKey(env)
  return connect(target, { auth: own === null ? null : { type: 'kiteKey', key: own.key }, kite: own === null ? {} : { username: own.claims.sub }, timeout })
}

export const tellCommand: Command = {
  usage: `kite tell URL|QUERY METHOD [ARG...] [--timeout MS] [--kontrol URL] [--strategy S] [--idempotent]

Calls METHOD on the kite at URL (authenticated with the kite.key, when there is one),
or on one of the kites Kontrol finds for QUERY (/username/environment/name/...), with the
token Kontrol issues: a kite is chosen at random (or by --strategy), and when it cannot
be reached the call goes to the next one. Each ARG is JSON when it parses as JSON, else a
string; an ARG written cb is a callback: each time the kite calls it, its arguments are
printed as one JSON line (an array). Prints the result as JSON, last.

  kite tell http://127.0.0.1:3636/kite countdown 3 cb     # [3] [2] [1] then "done"

  --timeout MS     how long to wait for the result (default 4000)
  --strategy S     how a QUERY's kite is chosen: ${STRATEGIES.join(', ')} (default random)
  --idempotent     a call sent to a kite that did not answer may be sent to the next one`,
  async run({ args, env, out }) {
    const { values, positionals } = parse(args, { timeout: { type: 'string' }, kontrol: { type: 'string' }, strategy: { type: 'string' }, idempotent: { type: 'boolean' } })
    const [target, method, ...rest] = positionals
    if (target === undefined || method === undefined) throw new UsageError('a URL or query and a method are required')
    const timeout = millis(values.timeout, 4000, 'timeout')
    const strategy = (values.strategy ?? 'random') as StrategyName
    if (!STRATEGIES.includes(strategy)) throw new UsageError(`--strategy must be one of ${STRATEGIES.join(', ')}`)
    if (!target.startsWith('/') && (values.strategy !== undefined || values.idempotent === true)) throw new UsageError('--strategy and --idempotent need a QUERY, not a URL')
    if (target.startsWith('/')) {
      const result = await tellThroughPool(target, method, rest.map((text) => argument(text, out)), env, { timeout, strategy, idempotent: values.idempotent === true, kontrol: values.kontrol })
      out(JSON.stringify(result ?? null))
      return EXIT.ok
    }
    const client = await dialTarget(target, env, timeout, values.kontrol)
    try {
      const result = await client.call(method, rest.map((text) => argument(text, out)), { timeout })
      out(JSON.stringify(result ?? null))
    } finally {
      await client.close()
    }
    return EXIT.ok
  },
}
