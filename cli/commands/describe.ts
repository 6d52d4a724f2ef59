import { KiteError, kiteError } from '../../lib/errors.js'
import type { KiteDescription } from '../../plugins/kite-server/kite.js'
import { EXIT, UsageError, type Command } from '../command.js'
import { millis, parse } from '../util.js'
import { dialTarget } from './tell.js'

/** One schema as one line of JSON. */
function short(value: unknown): string {
  return JSON.stringify(value ?? null)
}

export const describeCommand: Command = {
  usage: `kite describe URL|QUERY [--json] [--timeout MS] [--kontrol URL]

Calls kite.describe and prints the kite's methods: name, whether it needs credentials,
whether it is served over HTTP too, and its argument and result schemas. Go and kite.js
kites do not have kite.describe; for them it says so and exits with 1.

  --json         print kite.describe's whole answer as JSON`,
  async run({ args, env, out }) {
    const { values, positionals } = parse(args, { json: { type: 'boolean' }, timeout: { type: 'string' }, kontrol: { type: 'string' } })
    const [target] = positionals
    if (target === undefined || positionals.length > 1) throw new UsageError('one URL or query is required')
    const timeout = millis(values.timeout, 4000, 'timeout')
    const client = await dialTarget(target, env, timeout, values.kontrol)
    let answer: KiteDescription
    try {
      answer = (await client.call('kite.describe', [], { timeout })) as KiteDescription
    } catch (err) {
      if (err instanceof KiteError && err.type === 'methodNotFound') {
        throw kiteError('KITE_ERR_CLI_NO_DESCRIBE', target)
      }
      if (err instanceof KiteError && err.type === 'timeout') {
        throw kiteError('KITE_ERR_CLI_DESCRIBE_TIMEOUT', target, timeout)
      }
      throw err
    } finally {
      await client.close()
    }
    if (values.json === true) {
      out(JSON.stringify(answer, null, 2))
      return EXIT.ok
    }
    const k = answer.kite
    out(`/${k.username}/${k.environment}/${k.name}/${k.version}/${k.region}/${k.hostname}/${k.id}`)
    for (const m of answer.methods) {
      const flags = [m.authentication ? 'auth' : 'no auth', ...(m.http ? ['http'] : [])].join(', ')
      out(`  ${m.name} (${flags})${m.description === '' ? '' : ` - ${m.description}`}`)
      if (m.schema !== null) {
        out(`      args:   ${short(m.schema.args)}`)
        if (m.schema.result !== null) out(`      result: ${short(m.schema.result)}`)
      }
    }
    return EXIT.ok
  },
}
