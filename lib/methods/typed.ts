import type { FastifyTypeProvider, FastifyTypeProviderDefault } from 'fastify'
import type { MethodOptions } from './method.js'
import type { KiteRequest } from './request.js'
import type { ArgsOf, KiteCallback, MethodSchema, ResultOf } from './schema.js'

/** The handler of a method with schema S under type provider TP: `req.args` typed from `args`, the return checked against `result`. */
export type TypedHandler<TP extends FastifyTypeProvider, S> = (req: KiteRequest<ArgsOf<TP, S>>) => ResultOf<TP, S> | Promise<ResultOf<TP, S>>

declare const provider: unique symbol

/** A method defined apart from an app (`kiteMethods<TP>()`), handled with `app.kite.handleAll({...})`. */
export interface KiteMethodDefinition<TP extends FastifyTypeProvider = FastifyTypeProviderDefault, S extends MethodSchema = MethodSchema> {
  readonly options: MethodOptions<S>
  readonly handler: TypedHandler<TP, S>
  /** @internal type only: the type provider the schemas are read with */
  readonly [provider]?: TP
}

/** Any method definition, whatever its schema. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyMethodDefinition = KiteMethodDefinition<any, any>

/**
 * Defines methods in a module of their own, typed by the type provider TP,
 * so that clients can import their type:
 *
 * ```ts
 * const method = kiteMethods<TypeBoxTypeProvider>()
 * export const mathMethods = {
 *   square: method({ schema: { args: [Type.Number()], result: Type.Number() }, auth: false }, (req) => req.args[0] ** 2),
 * }
 * app.kite.handleAll(mathMethods)
 * client.typed<typeof mathMethods>().square(4)   // Promise<number>
 * ```
 */
export function kiteMethods<TP extends FastifyTypeProvider = FastifyTypeProviderDefault>() {
  return <const S extends MethodSchema>(options: MethodOptions<S>, handler: TypedHandler<TP, S>): KiteMethodDefinition<TP, S> => ({ options, handler })
}

/** A value as a client passes it: a callback may be any function (its result is not sent back). */
export type ClientValue<T> = T extends KiteCallback<infer P>
  ? (...args: P) => unknown
  : T extends readonly unknown[]
    ? { [K in keyof T]: ClientValue<T[K]> }
    : T extends object
      ? { [K in keyof T]: ClientValue<T[K]> }
      : T

type ClientArgs<A> = A extends readonly unknown[] ? { [K in keyof A]: ClientValue<A[K]> } : unknown[]

/** The methods of M as a client calls them: `square(4): Promise<number>`. */
export type TypedClient<M> = {
  readonly [K in keyof M & string]: M[K] extends KiteMethodDefinition<infer TP, infer S> ? (...args: Extract<ClientArgs<ArgsOf<TP, S>>, readonly unknown[]>) => Promise<ResultOf<TP, S>> : never
}
