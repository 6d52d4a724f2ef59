import pino from 'pino'
import { KiteConnection } from '../lib/connection/connection.js'
import { resolveLimits } from '../lib/dnode/limits.js'
import { MethodTable } from '../lib/methods/dispatch.js'
import { localKite } from '../lib/protocol/kite.js'

/**
 * The dispatch of one call, in process (no sockets): parse nothing, find the
 * method, read the envelope, run the handler, encode the answer. `square`
 * without a schema against the same handler with an args schema of its shape
 * compiled by Fastify's default Ajv, alternating, median of the rounds.
 */
export function schemaDispatchCost(rounds = 7, callsPerRound = 200_000): { plainNs: number; schemaNs: number; ratio: number } {
  const table = new MethodTable({ validatorCompiler: undefined })
  table.handle('square', { auth: false }, (req) => (req.args[0] as number) ** 2)
  table.handle('schemaSquare', { schema: { args: [{ type: 'number' }] }, auth: false }, (req) => (req.args[0] as number) ** 2)
  let written = 0
  const conn = new KiteConnection({
    sink: { send: (text) => void (written += text.length), close: () => {} },
    handler: table,
    limits: resolveLimits({}),
    log: pino({ level: 'silent' }),
    localKite: localKite({ name: 'bench', version: '1.0.0' }),
    transport: 'bench',
  })
  const kite = localKite({ name: 'kite-client', version: '1.0.0' })
  const run = (method: string): number => {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < callsPerRound; i++) table.handleCall(conn, { method, args: [{ kite, authentication: null, withArgs: [4] }], responseId: 1 })
    return Number(process.hrtime.bigint() - t0) / callsPerRound
  }
  run('square')
  run('schemaSquare')
  const plain: number[] = []
  const schema: number[] = []
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      plain.push(run('square'))
      schema.push(run('schemaSquare'))
    } else {
      schema.push(run('schemaSquare'))
      plain.push(run('square'))
    }
  }
  if (written === 0) throw new Error('nothing answered')
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const plainNs = median(plain)
  const schemaNs = median(schema)
  return { plainNs, schemaNs, ratio: plainNs / schemaNs }
}
