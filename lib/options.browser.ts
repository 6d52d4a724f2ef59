/**
 * Browser stand-in for options.ts (the bundle's size budget): only the checks
 * the browser client uses (KiteClient, backpressure), with one short message
 * per failure instead of the full wording.
 */
import type { KiteErrorCode } from './errors.js'
import type { NumberRule } from './options.js'

export type { NumberRule }

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

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

export class OptionChecker {
  private readonly o: Record<string, unknown>

  constructor(
    readonly plugin: string,
    options: unknown,
  ) {
    this.o = this.check('object', options == null || isObject(options), options ?? {})
  }

  fail(name: string, message: string): never {
    throw new KiteOptionError(this.plugin, name, message)
  }

  private check<T>(name: string, ok: boolean, v: unknown): T {
    if (!ok) this.fail(name, `is invalid: ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`)
    return v as T
  }

  raw(name: string): unknown {
    return this.o[name]
  }

  numberValue(name: string, value: unknown, fallback: number, rule: NumberRule = {}): number {
    const v = value ?? fallback
    const ok = typeof v === 'number' && Number.isFinite(v) && (!rule.integer || Number.isInteger(v)) && (v >= (rule.min ?? 0) || (rule.zero === true && v === 0)) && (rule.max === undefined || v <= rule.max)
    return this.check(name, ok, v)
  }

  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const v = this.o[name]
    return v === undefined ? fallback : this.check(name, values.includes(v as T), v)
  }

  object(name: string): Record<string, unknown> {
    const v = this.o[name] ?? {}
    return this.check(name, isObject(v), v)
  }
}

export function checkOptions(plugin: string, options: unknown): OptionChecker {
  return new OptionChecker(plugin, options)
}
