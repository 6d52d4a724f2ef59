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
    for (let i = 0; i < callsPerRound; i++) table.handleCall(conn, { method, args: [{ kite, authentication: null, withArgs: [] }], responseId: 1 })
    return Number(process.hrtime.bigint() - t0) / callsPerRound
  }
  run('plainUser')
  run('schemaUser')
  const plain: number[] = []
  const schema: number[] = []
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ['plainUser', 'schemaUser'] : ['schemaUser', 'plainUser']
    for (const m of order) (m === 'plainUser' ? plain : schema).push(run(m))
  }
  await app.close()
  if (written === 0) throw new Error('nothing answered')
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const plainNs = median(plain)
  const schemaNs = median(schema)
  return { plainNs, schemaNs, ratio: plainNs / schemaNs }
}
