import { EXIT, UsageError, type Command } from '../command.js'
import { millis, parse } from '../util.js'
import { dialTarget } from './tell.js'

export const pingCommand: Command = {
  usage: `kite ping URL [--timeout MS]

Calls kite.ping on the kite at URL and prints "pong" with the round trip time.`,
  async run({ args, env, out }) {
    const { values, positionals } = parse(args, { timeout: { type: 'string' } })
    const [url] = positionals
    if (url === undefined || positionals.length > 1) throw new UsageError('one URL is required')
    const timeout = millis(values.timeout, 4000, 'timeout')
    const client = await dialTarget(url, env, timeout)
    try {
      const started = performance.now()
      const answer = await client.call('kite.ping', [], { timeout })
      out(`${String(answer)} from ${url} in ${(performance.now() - started).toFixed(1)} ms`)
    } finally {
      await client.close()
    }
    return EXIT.ok
  },
}
