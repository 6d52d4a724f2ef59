import type { KiteClient } from '../../client/client.js'
import { EXIT, UsageError, type Command } from '../command.js'
import { connect, millis, ownKiteKey, parse, requireKiteKey } from '../util.js'
import { findKites, queryFromPath } from './query.js'

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
    if (first === undefined) throw new Error(`no kites found for ${target}`)
    return connect(first.url, { auth: { type: 'token', key: first.token }, kite: { username: claims.sub }, timeout })
  }
  const own = await ownKiteKey(env)
  return connect(target, { auth: own === null ? null : { type: 'kiteKey', key: own.key }, kite: own === null ? {} : { username: own.claims.sub }, timeout })
}

export const tellCommand: Command = {
  name: 'tell',
  summary: 'call a method of a kite and print the result',
  usage: `kite tell URL|QUERY METHOD [ARG...] [--timeout MS] [--kontrol URL]

Calls METHOD on the kite at URL (authenticated with the kite.key, when there is one),
or on the first kite Kontrol finds for QUERY (/username/environment/name/...), with the
token Kontrol issues. Each ARG is JSON when it parses as JSON, else a string; an ARG
written cb is a callback: each time the kite calls it, its arguments are printed as one
JSON line (an array). Prints the result as JSON, last.

  kite tell http://127.0.0.1:3636/kite countdown 3 cb     # [3] [2] [1] then "done"

  --timeout MS   how long to wait for the result (default 4000)`,
  async run({ args, env, out }) {
    const { values, positionals } = parse(args, { timeout: { type: 'string' }, kontrol: { type: 'string' } })
    const [target, method, ...rest] = positionals
    if (target === undefined || method === undefined) throw new UsageError('a URL or query and a method are required')
    const timeout = millis(values.timeout, 4000, 'timeout')
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
