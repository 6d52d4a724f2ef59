/**
 * One way for every plugin (and KiteClient) to check its options when it
 * registers: each check names the plugin and the option, so that a mistake
 * fails at start with `kontrol-register option timeout must be …`, never
 * later as an unhandled rejection.
 */

import type { KiteErrorCode } from './errors.js'

/** A bad option: a TypeError carrying `code` `KITE_ERR_CONFIG_INVALID`, the plugin and the option's name. */
export class KiteOptionError extends TypeError {
  readonly code: KiteErrorCode = 'KITE_ERR_CONFIG_INVALID'
  constructor(
    readonly plugin: string,
    readonly option: string,
    message: string,
  ) {
    super(`${plugin} option ${option} ${message}`)
  }
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)
  if (typeof v === 'function') return 'a function'
  if (v === null || typeof v !== 'object') return String(v)
  return Array.isArray(v) ? 'an array' : 'an object'
}

export interface NumberRule {
  /** Smallest value allowed. Default 0. */
  min?: number
  /** Largest value allowed. */
  max?: number
  /** Must be an integer. */
  integer?: boolean
  /** 0 is allowed even when `min` is above 0 (0 meaning "never"/"none"). */
  zero?: boolean
}

/** Checks the options of one plugin. */
export class OptionChecker {
  private readonly o: Record<string, unknown>

  constructor(
    readonly plugin: string,
    options: unknown,
  ) {
    if (options === undefined || options === null) this.o = {}
    else if (typeof options !== 'object' || Array.isArray(options)) throw new KiteOptionError(plugin, 'object', `must be an object, got ${show(options)}`)
    else this.o = options as Record<string, unknown>
  }

  /** Throws the error for `name`. */
  fail(name: string, message: string): never {
    throw new KiteOptionError(this.plugin, name, message)
  }

  /** The raw value. */
  raw(name: string): unknown {
    return this.o[name]
  }

  /** A finite number within the rule, or `fallback` when absent. */
  number(name: string, fallback: number, rule: NumberRule = {}): number {
    return this.numberValue(name, this.o[name], fallback, rule)
  }

  /** The same check for a value that is not a top-level option (e.g. `backoff.initialMs`). */
  numberValue(name: string, value: unknown, fallback: number, rule: NumberRule = {}): number {
    const v = value ?? fallback
    const min = rule.min ?? 0
    const ok = typeof v === 'number' && Number.isFinite(v) && (!rule.integer || Number.isInteger(v)) && (v >= min || (rule.zero === true && v === 0)) && (rule.max === undefined || v <= rule.max)
    if (!ok) {
      const what = rule.integer ? 'an integer' : 'a number'
      const range = rule.max !== undefined ? (min === Number.MIN_VALUE ? ` above 0 and at most ${rule.max}` : ` from ${min} to ${rule.max}`) : min === Number.MIN_VALUE ? ' above 0 (a positive number)' : min > 0 ? (rule.zero ? ` of at least ${min}, or 0` : ` of at least ${min}`) : ' of at least 0'
      this.fail(name, `must be ${what}${range}, got ${show(v)}`)
    }
    return v as number
  }

  /** A string (non-empty unless `allowEmpty`), or `fallback` (may be undefined) when absent. */
  string<F extends string | undefined>(name: string, fallback: F, allowEmpty = false): string | F {
    const v = this.o[name]
    if (v === undefined) return fallback
    if (typeof v !== 'string' || (!allowEmpty && v === '')) this.fail(name, `must be a${allowEmpty ? '' : ' non-empty'} string, got ${show(v)}`)
    return v
  }

  /** A boolean, or `fallback`. */
  boolean(name: string, fallback: boolean): boolean {
    const v = this.o[name]
    if (v === undefined) return fallback
    if (typeof v !== 'boolean') this.fail(name, `must be true or false, got ${show(v)}`)
    return v
  }

  /** One of `values`, or `fallback`. */
  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const v = this.o[name]
    if (v === undefined) return fallback
    if (typeof v !== 'string' || !values.includes(v as T)) this.fail(name, `must be one of ${values.map((x) => `'${x}'`).join(', ')}, got ${show(v)}`)
    return v as T
  }

  /** A function, or undefined. */
  fn<F extends (...args: never[]) => unknown>(name: string): F | undefined {
    const v = this.o[name]
    if (v === undefined) return undefined
    if (typeof v !== 'function') this.fail(name, `must be a function, got ${show(v)}`)
    return v as F
  }

  /** An object of functions (`authenticators`), or `{}`. */
  functions<F>(name: string): Record<string, F> {
    const v = this.o[name]
    if (v === undefined) return {}
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(name, `must be an object of functions, got ${show(v)}`)
    for (const [k, f] of Object.entries(v)) if (typeof f !== 'function') this.fail(`${name}.${k}`, `must be a function, got ${show(f)}`)
    return v as Record<string, F>
  }

  /** An object (sub-options), or `{}`. */
  object(name: string): Record<string, unknown> {
    const v = this.o[name]
    if (v === undefined) return {}
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(name, `must be an object, got ${show(v)}`)
    return v as Record<string, unknown>
  }

  /** A URL path like `/health/live` (letters, digits, `._~-` between slashes), `false` when `allowFalse` (no route), or `fallback` when absent. */
  path(name: string, fallback: string, allowFalse = true): string | false {
    const v = this.o[name]
    if (v === undefined) return fallback
    if (v === false && allowFalse) return false
    if (typeof v !== 'string' || !/^(\/[A-Za-z0-9._~-]+)+$/.test(v)) this.fail(name, `must be a path like ${fallback}${allowFalse ? ' or false' : ''}, got ${show(v)}`)
    return v
  }

  /** A kite identity field (`environment`, `region`…): a non-empty string without `/`, or `fallback` when absent. */
  kiteField<F extends string | undefined>(name: string, fallback: F): string | F {
    const v = this.string(name, fallback)
    if (typeof v === 'string' && v.includes('/')) this.fail(name, `must not contain "/", got ${show(v)}`)
    return v
  }

  /** A kite version (three dot-separated parts, e.g. `1.0.0`), or `fallback` when absent. */
  version(name: string, fallback: string): string {
    const v = this.kiteField(name, fallback)
    if (v.split('.').length !== 3) this.fail(name, `must have 3 dot-separated parts like 1.0.0, got ${show(v)}`)
    return v
  }

  /** An object whose `methods` are functions (a duck-typed instance, e.g. a prom-client Registry), or undefined when absent. */
  instance<T>(name: string, what: string, methods: readonly string[]): T | undefined {
    const v = this.o[name]
    if (v === undefined) return undefined
    if (v === null || typeof v !== 'object' || methods.some((m) => typeof (v as Record<string, unknown>)[m] !== 'function')) this.fail(name, `must be ${what}, got ${show(v)}`)
    return v as T
  }

  /** A URL string with one of `protocols` (e.g. `['http:', 'https:']`), or undefined. */
  url(name: string, value: unknown, protocols: readonly string[]): string | undefined {
    if (value === undefined) return undefined
    if (typeof value !== 'string') this.fail(name, `must be a URL string, got ${show(value)}`)
    let u: URL
    try {
      u = new URL(value)
    } catch {
      return this.fail(name, `must be a URL, got ${show(value)}`)
    }
    if (!protocols.includes(u.protocol)) this.fail(name, `must be a ${protocols.map((p) => p.slice(0, -1)).join(' or ')} URL, got ${show(value)}`)
    return value
  }
}

/** Starts checking the options of `plugin`. */
export function checkOptions(plugin: string, options: unknown): OptionChecker {
  return new OptionChecker(plugin, options)
}
