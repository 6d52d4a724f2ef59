import { usageError } from '../errors.js'
import { TokenBucket, type Clock, type ThrottleOptions } from './throttle.js'
import type { KiteRequest } from './request.js'
import type { CompiledSchema, MethodSchema } from './schema.js'

/** A method's main handler, or a pre/post handler: gets the request, returns a result. */
export type KiteHandler<Result = unknown, Args = unknown[]> = (req: KiteRequest<Args>) => Result | Promise<Result>

/** The second argument of `handle(name, options, handler)`. */
export interface MethodOptions<S extends MethodSchema = MethodSchema> {
  /** JSON schemas (TypeBox works) of the arguments and the result. */
  schema?: S
  /** `false`: callable without credentials (as `disableAuthentication()`). Default true. */
  auth?: boolean
  /** Which result the chain answers with (as `methodHandling()`). */
  handling?: MethodHandling
  /** A token bucket shared by all callers (as `throttle()`). */
  throttle?: ThrottleOptions
  /** Also serve it over HTTP: `POST <prefix>/methods/<name>` (see the kite-server `http` option). */
  http?: boolean
  /** Shown by `kite.describe` and in OpenAPI. */
  description?: string
}

/** What a call ends with: a result, or an error. */
export interface Outcome {
  result: unknown
  error: Error | null
}

/**
 * Runs after the chain, even when it failed, with its outcome (G `FinalFunc`).
 * Return an outcome to replace it (`{ result: 2 }` turns a failure into a
 * success); return nothing to keep it; throw to fail the call.
 */
export type FinalHandler = (req: KiteRequest, outcome: Readonly<Outcome>) => void | Partial<Outcome> | Promise<void | Partial<Outcome>>

/**
 * Which result a chain answers with (spec §9.5): the main handler's (`method`),
 * the first non-empty one among pre, main and post (`first`), or that of the
 * last handler that ran (`latest`).
 */
export type MethodHandling = 'method' | 'first' | 'latest'

/** Handlers that run around methods: per method, and kite-wide. */
export class HandlerLists {
  readonly pre: KiteHandler[] = []
  readonly post: KiteHandler[] = []
  readonly final: FinalHandler[] = []
  /** Bumped on every change, so compiled chains know to rebuild. */
  version = 0

  /** Adds a handler that runs before the main one. */
  preHandle(fn: KiteHandler): this {
    this.pre.push(checkFn(fn, 'preHandle'))
    this.version++
    return this
  }

  /** Adds a handler that runs after the main one. */
  postHandle(fn: KiteHandler): this {
    this.post.push(checkFn(fn, 'postHandle'))
    this.version++
    return this
  }

  /** Adds a handler that runs last, with the chain's outcome, even when it failed. */
  finalHandle(fn: FinalHandler): this {
    this.final.push(checkFn(fn, 'finalHandle'))
    this.version++
    return this
  }
}

function checkFn<F>(fn: F, what: string): F {
  if (typeof fn !== 'function') throw usageError('KITE_ERR_METHOD_SETUP', `${what} needs a function`)
  return fn
}

/** A registered kite method: its handler, its own pre/post/final handlers, auth and throttle settings. */
export class KiteMethod extends HandlerLists {
  /** False once `disableAuthentication()` was called. */
  authenticate = true
  /** Overrides the kite-wide method handling mode for this method. */
  handling: MethodHandling | null = null
  bucket: TokenBucket | null = null
  /** The schemas given to `handle(name, { schema }, handler)`, or null. */
  schema: MethodSchema | null = null
  /** @internal the schemas compiled by the table's validator compiler; null until compiled (or without schema) */
  compiledSchema: CompiledSchema | null = null
  /** Served over HTTP too (`POST <prefix>/methods/<name>`). */
  http = false
  description = ''
  /** @internal this method's chain merged with the kite-wide one, and the versions it was built from */
  compiled: { methodVersion: number; kiteVersion: number; chain: { pre: KiteHandler[]; post: KiteHandler[]; final: FinalHandler[] } } | null = null

  constructor(
    /** The method name callers use. */
    readonly name: string,
    /** The main handler. */
    readonly handler: KiteHandler,
    private readonly clock: Clock = Date.now,
  ) {
    super()
    if (typeof name !== 'string' || name === '') throw usageError('KITE_ERR_METHOD_SETUP', 'a method needs a non-empty name')
    checkFn(handler, `method ${name}`)
  }

  /** Lets callers use this method without credentials. */
  disableAuthentication(): this {
    this.authenticate = false
    return this
  }

  /** Limits calls across all callers with a token bucket; empty → `requestLimitError`. */
  throttle(options: ThrottleOptions): this {
    this.bucket = new TokenBucket(options, this.clock)
    return this
  }

  /** Sets which result this method's chain answers with. */
  methodHandling(mode: MethodHandling): this {
    if (mode !== 'method' && mode !== 'first' && mode !== 'latest') throw usageError('KITE_ERR_METHOD_SETUP', `unknown method handling ${String(mode)}`)
    this.handling = mode
    return this
  }
}
