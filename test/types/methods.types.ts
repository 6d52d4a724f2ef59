/**
 * Type tests, run by `npm test` (`tsc -p test/types/tsconfig.json`): every
 * `@ts-expect-error` line must be an error, or tsc fails on the unused
 * directive; every other line must compile.
 */
import Fastify from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { KiteClient, kiteCallback, kiteServer, type KiteCallback } from '../../index.js'
import type { mathMethods } from './math-methods.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function assertType<T extends true>(): T | void {}

const app = Fastify().withTypeProvider<TypeBoxTypeProvider>()
await app.register(kiteServer, { name: 'math', version: '1.0.0' })

// req.args is typed from the args schema (one schema per argument).
app.kite.handle('square', { schema: { args: [Type.Number()], result: Type.Number() } }, (req) => {
  assertType<Equal<typeof req.args, [number]>>()
  return req.args[0] * req.args[0]
})

// … or from one tuple schema, with nested objects and optional members.
app.kite.handle('greet', { schema: { args: Type.Tuple([Type.Object({ name: Type.String(), age: Type.Optional(Type.Integer()) })]) } }, (req) => {
  const [who] = req.args
  assertType<Equal<typeof who.name, string>>()
  assertType<Equal<typeof who.age, number | undefined>>()
  // @ts-expect-error name is a string, not a number
  const n: number = who.name
  return `${who.name} ${n}`
})

// The result is checked against the result schema.
// @ts-expect-error a string is not the number the result schema declares
app.kite.handle('wrongResult', { schema: { args: [Type.Number()], result: Type.Number() } }, (req) => String(req.args[0]))

// … asynchronous handlers too.
// @ts-expect-error Promise<string> is not Promise<number>
app.kite.handle('wrongAsync', { schema: { result: Type.Number() } }, async () => 'four')

app.kite.handle('wrongArg', { schema: { args: [Type.String()] } }, (req) => {
  // @ts-expect-error args[0] is a string
  const x: number = req.args[0]
  return x
})

// A callback argument is a callable returning a promise.
app.kite.handle('countdown', { schema: { args: [Type.Integer(), kiteCallback([Type.Integer()])] } }, async (req) => {
  const [n, onTick] = req.args
  assertType<Equal<typeof onTick, KiteCallback<[number]>>>()
  const sent: Promise<void> = onTick(n)
  await sent
  // @ts-expect-error the callback takes an integer
  await onTick('three')
  return 'done'
})

// No arguments at all.
app.kite.handle('none', { schema: { args: [], result: Type.String() } }, (req) => {
  assertType<Equal<typeof req.args, []>>()
  return 'none'
})

// A method without a schema keeps unknown[].
app.kite.handle('plain', (req) => {
  assertType<Equal<typeof req.args, unknown[]>>()
  return null
})
app.kite.handle('optionsOnly', { auth: false }, (req) => {
  assertType<Equal<typeof req.args, unknown[]>>()
  return null
})

// Without a type provider, schemas do not type the arguments.
const untyped = Fastify()
await untyped.register(kiteServer, { name: 'math', version: '1.0.0' })
untyped.kite.handle('square', { schema: { args: [Type.Number()] } }, (req) => {
  assertType<Equal<typeof req.args, unknown[]>>()
  return 1
})

// The typed client: the definitions' module is imported as a type only.
const client = new KiteClient('http://127.0.0.1:3636/kite')
const math = client.typed<typeof mathMethods>()
const squared: Promise<number> = math.square(4)
const greeting: Promise<string> = math.greet({ name: 'ada' })
const done: Promise<'done'> = math.countdown(3, (i) => console.log(i + 1))
const loose: Promise<unknown> = math.loose(1, 'two', [3])
void [squared, greeting, done, loose]
// @ts-expect-error square takes a number
void math.square('4')
// @ts-expect-error square takes one argument
void math.square(4, 5)
// @ts-expect-error square answers a number
const notString: Promise<string> = math.square(4)
// @ts-expect-error greet needs an object with a name
void math.greet({ nom: 'ada' })
// @ts-expect-error the callback gets a number
void math.countdown(3, (i: string) => i)
// @ts-expect-error no such method
void math.cube(3)
void notString
