import type { CallbackPath } from './message.js'
import { kiteError } from '../errors.js'

/** A function found in outgoing data, with where it sits. */
export interface FoundFunction {
  path: Array<string | number>
  fn: (...args: unknown[]) => unknown
}

/** Outgoing data deeper than this is refused rather than walked (it is also a cycle guard). */
export const MAX_OUTGOING_DEPTH = 256

function isPlainContainer(value: object): boolean {
  if (Array.isArray(value)) return true
  const proto = Object.getPrototypeOf(value)
  return (proto === Object.prototype || proto === null) && typeof (value as { toJSON?: unknown }).toJSON !== 'function'
}

/**
 * Collects every function inside `value` (plain arrays and objects only, as
 * JSON.stringify would see them). `stack` holds the path so far; a copy of it
 * is made only when a function is found, so data without callbacks costs a
 * walk and no allocation.
 */
export function findFunctions(value: unknown, stack: Array<string | number>, out: FoundFunction[]): void {
  if (typeof value === 'function') {
    out.push({ path: stack.slice(), fn: value as FoundFunction['fn'] })
    return
  }
  if (value === null || typeof value !== 'object' || !isPlainContainer(value)) return
  if (stack.length >= MAX_OUTGOING_DEPTH) throw kiteError('KITE_ERR_SEND_TOO_DEEP', MAX_OUTGOING_DEPTH)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (item !== null && (typeof item === 'object' || typeof item === 'function')) {
        stack.push(i)
        findFunctions(item, stack, out)
        stack.pop()
      }
    }
    return
  }
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key]
    if (item !== null && (typeof item === 'object' || typeof item === 'function')) {
      stack.push(key)
      findFunctions(item, stack, out)
      stack.pop()
    }
  }
}

/** JSON.stringify replacer that writes every function as the dnode placeholder. */
export function functionPlaceholder(_key: string, value: unknown): unknown {
  return typeof value === 'function' ? '[Function]' : value
}

function stepInto(container: unknown, step: string | number): unknown {
  if (container === null || typeof container !== 'object') return undefined
  if (Array.isArray(container)) {
    const index = typeof step === 'number' ? step : /^\d+$/.test(step) ? Number(step) : -1
    return index >= 0 && index < container.length ? container[index] : undefined
  }
  const key = String(step)
  return Object.hasOwn(container, key) ? (container as Record<string, unknown>)[key] : undefined
}

/**
 * Puts `fn` where `path` points inside `root`. Only replaces a value that is
 * already there (the `[Function]` placeholder), so a path can never add keys
 * or reach a prototype. Returns false when the path leads nowhere.
 */
export function installAt(root: unknown[], path: CallbackPath, fn: unknown): boolean {
  let container: unknown = root
  for (let i = 0; i < path.length - 1; i++) {
    container = stepInto(container, path[i]!)
  }
  if (container === null || typeof container !== 'object') return false
  const last = path[path.length - 1]!
  if (Array.isArray(container)) {
    const index = typeof last === 'number' ? last : /^\d+$/.test(last) ? Number(last) : -1
    if (index < 0 || index >= container.length) return false
    container[index] = fn
    return true
  }
  const key = String(last)
  if (!Object.hasOwn(container, key)) return false
  ;(container as Record<string, unknown>)[key] = fn
  return true
}

/** True when `path` is the envelope's response callback, in G (`[0,…]`) or J (`["0",…]`) form. */
export function isResponseCallbackPath(path: CallbackPath): boolean {
  return path.length === 2 && (path[0] === 0 || path[0] === '0') && path[1] === 'responseCallback'
}
