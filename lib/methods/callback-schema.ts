import { Type, type Static, type TSchema, type TUnsafe } from 'typebox'
import { KITE_CALLBACK, type KiteCallback } from './schema.js'

type StaticParams<P extends readonly TSchema[]> = { -readonly [K in keyof P]: P[K] extends TSchema ? Static<P[K]> : unknown }

/**
 * The schema of a callback argument: `Type.Tuple([Type.Integer(), kiteCallback([Type.Integer()])])`.
 * Validated as a function, typed as `KiteCallback<[number]>`. `params`
 * documents (and types) what the method calls it with; they are not checked.
 */
export function kiteCallback<const P extends readonly TSchema[] = []>(params?: P, options: { description?: string } = {}): TUnsafe<KiteCallback<StaticParams<P>>> {
  const schema: Record<string, unknown> = { [KITE_CALLBACK]: true }
  if (params !== undefined && params.length > 0) schema['x-kite-callback-params'] = [...params]
  if (options.description !== undefined) schema.description = options.description
  return Type.Unsafe<KiteCallback<StaticParams<P>>>(schema as unknown as TSchema)
}
