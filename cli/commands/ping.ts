import { EXIT, UsageError, type Command } from '../command.js'
import { millis, parse } from '../util.js'
import { dialTarget, tellThroughPool } from './tell.js'

/**
 * `kite.ping` on the kite at a URL (timed from the call, once connected), or on one of a QUERY's
 * kites through a pool (random, with failover, as `kite tell`; timed from the lookup). The answer and ms.
 */
async function ping(target: string, env: NodeJS.ProcessEnv, timeout: number): Promise<[unknown, number]> {
  let started = performance.now()
  if (target.startsWith('/')) return [await tellThroughPool(target, 'kite.ping', [], env, { timeout, strategy: 'random', idempotent: true }), performance.now() - started]
  const client = await dialTarget(target, env, timeout)
  try {
    started = performance.now()
    return [await client.call('kite.ping', [], { timeout }), performance.now() - started]
  } finally {
    await client.close()
  }
}

export const pingCommand: Command = {
  usage: `kite ping URL|QUERY [--timeout MS]

Calls kite.ping on the kite at URL, or on one of the kites Kontrol finds for
QUERY (/user/env/name/...; chosen at random, the next one when it cannot be
reached, as kite tell), and prints "pong" with the round trip time (for a
QUERY, from the lookup on).`,
  async run({ args, env, out }) {
    const { values, positionals } = parse(args, { timeout: { type: 'string' } })
    const [target] = positionals
    if (target === undefined || positionals.length > 1) throw new UsageError('one URL or QUERY is required')
    const timeout = millis(values.timeout, 4000, 'timeout')
    const [answer, ms] = await ping(target, env, timeout)
    out(`${String(answer)} from ${target} in ${ms.toFixed(1)} ms`)
    return EXIT.ok
  },
}
