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
  const { aNs: plainNs, bNs: schemaNs } = alternate(table, [4], 'square', 'schemaSquare', rounds, callsPerRound)
  return { plainNs, schemaNs, ratio: plainNs / schemaNs }
}

/**
 * Encoding an object result, in process: a method with a `result` schema (written by
 * fast-json-stringify, Fastify's serializer compiler) against the same method without one
 * (scrubbed for functions, then JSON.stringify), alternating, median of the rounds.
 */
export async function resultEncodeCost(rounds = 7, callsPerRound = 100_000): Promise<{ plainNs: number; schemaNs: number; ratio: number }> {
  const { default: Fastify } = await import('fastify')
  const { appSerializerCompiler, appValidatorCompiler } = await import('../plugins/kite-server/http-mirror.js')
  const app = Fastify()
  await app.ready()
  const table = new MethodTable({ validatorCompiler: undefined, compileNow: false })
  const user = { type: 'object', properties: { id: { type: 'integer' }, name: { type: 'string' }, email: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } }, active: { type: 'boolean' } } }
  const value = (): unknown => ({ id: 42, name: 'Ann Example', email: 'ann@example.com', tags: ['admin', 'ops', 'eu'], active: true })
  table.handle('plainUser', { auth: false }, value)
  table.handle('schemaUser', { schema: { result: user }, auth: false }, value)
  table.useValidatorCompiler(appValidatorCompiler(app), appSerializerCompiler(app))
  const { aNs: plainNs, bNs: schemaNs } = alternate(table, [], 'plainUser', 'schemaUser', rounds, callsPerRound)
  await app.close()
  return { plainNs, schemaNs, ratio: plainNs / schemaNs }
}

/** A connection answering into a counter (no socket), the table's calls timed per round, and two methods alternated: medians in ns per call. */
function alternate(table: MethodTable, withArgs: unknown[], a: string, b: string, rounds: number, callsPerRound: number): { aNs: number; bNs: number } {
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
    for (let i = 0; i < callsPerRound; i++) table.handleCall(conn, { method, args: [{ kite, authentication: null, withArgs }], responseId: 1 })
    return Number(process.hrtime.bigint() - t0) / callsPerRound
  }
  run(a)
  run(b)
  const times: Record<string, number[]> = { [a]: [], [b]: [] }
  for (let r = 0; r < rounds; r++) for (const m of r % 2 === 0 ? [a, b] : [b, a]) times[m]!.push(run(m))
  if (written === 0) throw new Error('nothing answered')
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
  return { aNs: median(times[a]!), bNs: median(times[b]!) }
}
