import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { kiteCallback, kiteMethods } from '../lib/methods/index.js'

const method = kiteMethods<TypeBoxTypeProvider>()

/**
 * The math kite's methods, with schemas. Clients import their type:
 * `client.typed<typeof mathMethods>().square(4)` is a `Promise<number>`.
 * - `square(n)`: n², no credentials needed; also `POST /kite/methods/square`.
 * - `countdown(n, onTick)`: calls `onTick(i)` for i = n … 1, then answers "done".
 * - `whoami()`: the caller's authenticated username (needs a kite.key or a token).
 */
export const mathMethods = {
  square: method(
    { schema: { args: [Type.Number()], result: Type.Number() }, auth: false, http: true, description: 'n squared' },
    (req) => req.args[0] * req.args[0],
  ),
  countdown: method(
    {
      schema: { args: [Type.Integer({ minimum: 0, maximum: 1000 }), kiteCallback([Type.Integer()], { description: 'called with n, n-1, … 1' })], result: Type.Literal('done') },
      auth: false,
      description: 'counts down from n, 10 ms a tick',
    },
    async (req) => {
      const [n, onTick] = req.args
      for (let i = n; i > 0; i--) {
        await onTick(i)
        await new Promise((r) => setTimeout(r, 10))
      }
      return 'done' as const
    },
  ),
  whoami: method({ schema: { args: [], result: Type.String() }, description: "the caller's authenticated username" }, (req) => req.username),
}
