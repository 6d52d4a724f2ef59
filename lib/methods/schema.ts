import type { FastifySchemaCompiler, FastifyTypeProvider, FastifyTypeProviderDefault } from 'fastify'
import { kiteError, usageError, type KiteError } from '../errors.js'

/** The JSON schema keyword that marks an argument as a callback (see `kiteCallback`). */
export const KITE_CALLBACK = 'x-kite-callback'

declare const callbackParams: unique symbol

/**
 * A callback argument as a handler sees it: calling it calls the caller's
 * function over the connection (kite callbacks have no answer); the promise
 * resolves once the call is sent and rejects with `sendError` when the caller
 * has gone.
 */
export type KiteCallback<P extends unknown[] = unknown[]> = ((...args: P) => Promise<void>) & { readonly [callbackParams]?: P }

/**
 * A method's schemas. `args` describes the `withArgs` array: one JSON schema
 * for the whole array (`Type.Tuple([...])`), or an array of one schema per
 * argument (all required). `result` describes what the method answers.
 */
export interface MethodSchema {
  args?: unknown
  result?: unknown
  /** Shown by `kite.describe` and in OpenAPI. */
  description?: string
}

type ArgsSchemaOf<S> = S extends { args: infer A } ? A : undefined

/** `req.args` of a method with schema S under type provider TP: typed from `args`, or `unknown[]` without one (or without a type provider). */
export type ArgsOf<TP extends FastifyTypeProvider, S> =
  ArgsSchemaOf<S> extends undefined
    ? unknown[]
    : ArgsSchemaOf<S> extends readonly unknown[]
      ? PerArgument<TP, ArgsSchemaOf<S>>
      : ProvidedOr<TP, ArgsSchemaOf<S>, unknown[]> extends infer A
        ? A extends readonly unknown[]
          ? A
          : unknown[]
        : unknown[]

/** An array of per-argument schemas: a tuple of what TP makes of each, or `unknown[]` when TP makes nothing of them. */
type PerArgument<TP extends FastifyTypeProvider, A extends readonly unknown[]> = unknown extends CallValidatorTypeProvider<TP, A[number]>
  ? unknown[]
  : { -readonly [K in keyof A]: ProvidedOr<TP, A[K], unknown> }

/** What a handler of a method with schema S must answer: typed from `result`, or anything without one. */
export type ResultOf<TP extends FastifyTypeProvider, S> = S extends { result: infer R } ? ProvidedOr<TP, R, unknown> : unknown

/** What type provider TP makes of schema S (Fastify's own `CallValidatorTypeProvider`, which it does not export). */
export type CallValidatorTypeProvider<TP extends FastifyTypeProvider, S> = (TP & { schema: S })['validator']

type ProvidedOr<TP extends FastifyTypeProvider, S, Fallback> = unknown extends CallValidatorTypeProvider<TP, S> ? Fallback : CallValidatorTypeProvider<TP, S>

/** The default type provider (no typing from schemas), re-exported for signatures. */
export type DefaultTypeProvider = FastifyTypeProviderDefault

/** A schema validator as Fastify's validator compilers build them (Ajv functions, or `{value}|{error}` returners). */
export type ValidatorCompiler = FastifySchemaCompiler<unknown>

/**
 * A result serializer as Fastify's serializer compilers build them (fast-json-stringify by
 * default): JSON text for a value of the schema's shape, properties the schema does not name left out.
 */
export type SerializerCompiler = (route: { schema: unknown; method: string; url: string; httpStatus: string }) => (data: unknown) => string

/** One place in the arguments where a callback is declared. */
type CallbackPath = readonly (string | number)[]

/** A method's schemas, compiled once. */
export class CompiledSchema {
  /** The `args` schema as JSON Schema for peers and OpenAPI (callbacks keep their `x-kite-callback` marker). */
  readonly argsJson: Record<string, unknown> | null
  readonly resultJson: unknown
  /** Where callbacks are declared; empty when none. */
  readonly callbackPaths: CallbackPath[]
  /**
   * The result's JSON, built by the app's serializer compiler from the `result` schema (as Fastify
   * serializes a route's response); null without a result schema, without a serializer compiler,
   * or when the result schema declares callbacks (those results are scrubbed as any other).
   */
  readonly serializeResult: ((result: unknown) => string) | null
  private readonly validateArgs: ((args: unknown[]) => unknown) | null
  private readonly validateResult: ((result: unknown) => unknown) | null

  constructor(schema: MethodSchema, compile: ValidatorCompiler, method: string, checkResults: boolean, serializer: SerializerCompiler | null = null) {
    this.argsJson = schema.args === undefined ? null : argsJsonOf(schema.args)
    this.resultJson = schema.result
    this.callbackPaths = []
    let forAjv: unknown = null
    if (this.argsJson !== null) forAjv = withoutCallbacks(this.argsJson, [], this.callbackPaths)
    const url = `kite:${method}`
    this.validateArgs = forAjv === null ? null : (compile({ schema: forAjv as never, method: 'KITE', url, httpPart: 'body' }) as (args: unknown[]) => unknown)
    this.validateResult =
      checkResults && schema.result !== undefined ? (compile({ schema: withoutCallbacks(schema.result, [], []) as never, method: 'KITE', url, httpPart: 'body' }) as (r: unknown) => unknown) : null
    const resultCallbacks: CallbackPath[] = []
    if (schema.result !== undefined) withoutCallbacks(schema.result, [], resultCallbacks)
    this.serializeResult = serializer !== null && schema.result !== undefined && resultCallbacks.length === 0 ? serializer({ schema: schema.result, method: 'KITE', url, httpStatus: '200' }) : null
  }

  /** True when the method declares callback arguments. */
  get hasCallbacks(): boolean {
    return this.callbackPaths.length > 0
  }

  /**
   * Checks (and, as the validator compiler is set up to, coerces or fills
   * defaults in) the arguments in place. Returns the `argumentError`, or null.
   */
  checkArgs(args: unknown[]): KiteError | null {
    if (this.validateArgs !== null) {
      const problem = outcome(this.validateArgs, args, 'args')
      if (problem !== null) return kiteError('KITE_ERR_ARGUMENT_INVALID', problem)
    }
    for (let i = 0; i < this.callbackPaths.length; i++) {
      const path = this.callbackPaths[i]!
      const holder = walk(args, path)
      if (holder === undefined) continue
      const key = path[path.length - 1]!
      const fn = (holder as Record<string | number, unknown>)[key]
      if (fn === undefined) continue
      if (typeof fn !== 'function') return kiteError('KITE_ERR_ARGUMENT_INVALID', `args/${path.join('/')} must be a callback`)
      ;(holder as Record<string | number, unknown>)[key] = promised(fn as (...a: unknown[]) => unknown)
    }
    return null
  }

  /** Checks a result against the `result` schema (when result checks are on). Returns the problem, or null. */
  checkResult(result: unknown): string | null {
    if (this.validateResult === null) return null
    return outcome(this.validateResult, result, 'result')
  }
}

/** Wraps a connection callback (which answers whether it could send) so that it returns a promise. */
function promised(fn: (...a: unknown[]) => unknown): KiteCallback {
  return ((...a: unknown[]) => (fn(...a) === false ? Promise.reject(kiteError('KITE_ERR_SEND_CLOSED')) : Promise.resolve())) as KiteCallback
}

function walk(root: unknown, path: CallbackPath): unknown {
  let node = root
  for (let i = 0; i < path.length - 1; i++) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string | number, unknown>)[path[i]!]
  }
  return node !== null && typeof node === 'object' ? node : undefined
}

/** Runs a validator built by a Fastify validator compiler; the message as Fastify words it (`args/0 must be number`), or null. */
function outcome(validate: (data: never) => unknown, data: unknown, dataVar: string): string | null {
  const ret = validate(data as never)
  if (ret === true) return null
  if (ret === false) return formatErrors((validate as unknown as { errors?: unknown }).errors, dataVar)
  if (ret !== null && typeof ret === 'object') {
    if (typeof (ret as PromiseLike<unknown>).then === 'function') return `${dataVar}: asynchronous schemas are not supported for kite methods`
    const err = (ret as { error?: unknown }).error
    if (err !== undefined && err !== null) {
      if (Array.isArray(err)) return formatErrors(err, dataVar)
      return err instanceof Error ? err.message : String(err)
    }
  }
  return null
}

interface SchemaErrorLike {
  instancePath?: string
  message?: string
}

function formatErrors(errors: unknown, dataVar: string): string {
  if (!Array.isArray(errors) || errors.length === 0) return `${dataVar} is invalid`
  return (errors as SchemaErrorLike[]).map((e) => `${dataVar}${e.instancePath ?? ''} ${e.message ?? 'is invalid'}`).join(', ')
}

/** An array of per-argument schemas becomes a tuple schema; a schema stays as it is. */
export function argsJsonOf(args: unknown): Record<string, unknown> {
  if (Array.isArray(args)) {
    if (args.length === 0) return { type: 'array', maxItems: 0 }
    // Trailing arguments marked optional (TypeBox's Type.Optional) may be left out.
    let required = args.length
    while (required > 0 && isOptional(args[required - 1])) required--
    return { type: 'array', items: [...args], minItems: required, additionalItems: false }
  }
  if (args === null || typeof args !== 'object') throw usageError('KITE_ERR_METHOD_SETUP', 'schema.args must be a JSON schema or an array of schemas')
  return args as Record<string, unknown>
}

function isOptional(schema: unknown): boolean {
  return schema !== null && typeof schema === 'object' && (schema as Record<string, unknown>)['~optional'] === true
}

/**
 * A copy of a schema for the validator: every callback marker becomes `{}`
 * (any value; a function is checked by `checkArgs`), and its place is
 * recorded. Callbacks are found in tuple items and object properties.
 */
function withoutCallbacks(schema: unknown, path: (string | number)[], found: CallbackPath[]): unknown {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return schema
  const s = schema as Record<string, unknown>
  if (s[KITE_CALLBACK] === true) {
    found.push([...path])
    return {}
  }
  let copy: Record<string, unknown> | null = null
  const set = (key: string, value: unknown): void => {
    copy ??= { ...s }
    copy[key] = value
  }
  if (Array.isArray(s.items)) set('items', s.items.map((item, i) => withoutCallbacks(item, [...path, i], found)))
  if (Array.isArray(s.prefixItems)) set('prefixItems', s.prefixItems.map((item, i) => withoutCallbacks(item, [...path, i], found)))
  if (s.properties !== null && typeof s.properties === 'object') {
    const props: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(s.properties as Record<string, unknown>)) props[k] = withoutCallbacks(v, [...path, k], found)
    set('properties', props)
  }
  return copy ?? s
}
