// A module of method definitions, as an app would keep them: the client imports only its type.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { kiteCallback, kiteMethods } from '../../index.js'

const method = kiteMethods<TypeBoxTypeProvider>()

export const mathMethods = {
  square: method({ schema: { args: [Type.Number()], result: Type.Number() }, auth: false }, (req) => req.args[0] * req.args[0]),
  greet: method({ schema: { args: Type.Tuple([Type.Object({ name: Type.String(), times: Type.Optional(Type.Integer()) })]), result: Type.String() } }, (req) =>
    `hello ${req.args[0].name}`.repeat(req.args[0].times ?? 1),
  ),
  countdown: method({ schema: { args: [Type.Integer(), kiteCallback([Type.Integer()])], result: Type.Literal('done') } }, async (req) => {
    const [n, onTick] = req.args
    for (let i = n; i > 0; i--) await onTick(i)
    return 'done' as const
  }),
  loose: method({}, (req) => req.args.length),
}
