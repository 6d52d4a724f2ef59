import { findFunctions, functionPlaceholder, type FoundFunction } from './scrub.js'

/**
 * The dnode encoder, the other half of message.ts's parser (spec §2.1):
 * `{"method": …, "arguments": […], "callbacks": {id: path}}` as text.
 * Functions inside the arguments become `"[Function]"` placeholders and
 * callback entries; the caller (a connection) gives them ids.
 */

/** Gives a found function an id the peer can call it by. */
export type RegisterCallback = (fn: FoundFunction['fn']) => number

/** The JSON of method names seen recently: a call repeats its method name, its quoting need not be redone. */
const methodJsonCache = new Map<string, string>()
const METHOD_JSON_CACHE_SIZE = 256

/** `"name"` as JSON, from a small cache (method names repeat); callback ids as digits. */
export function methodJson(method: string | number): string {
  if (typeof method === 'number') return String(method)
  let json = methodJsonCache.get(method)
  if (json === undefined) {
    json = JSON.stringify(method)
    if (methodJsonCache.size >= METHOD_JSON_CACHE_SIZE) methodJsonCache.clear()
    methodJsonCache.set(method, json)
  }
  return json
}

/** True when no element can hold a function, so scrubbing can be skipped. */
export function allPrimitive(values: readonly unknown[]): boolean {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (v !== null && (typeof v === 'object' || typeof v === 'function')) return false
  }
  return true
}

/**
 * JSON of a value that is not an object or function, as JSON.stringify
 * writes it inside an array (undefined and symbols as null), without its
 * general machinery: a number costs a conversion, not a serializer run.
 * Throws as JSON.stringify does for a BigInt.
 */
export function primitiveJson(value: unknown): string {
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null'
    case 'string':
      return JSON.stringify(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'bigint':
      return JSON.stringify(value)
    default:
      return 'null'
  }
}

/** JSON of an array whose elements are all primitive (see allPrimitive). */
export function primitiveArrayJson(values: readonly unknown[]): string {
  if (values.length === 0) return '[]'
  let json = `[${primitiveJson(values[0])}`
  for (let i = 1; i < values.length; i++) json += `,${primitiveJson(values[i])}`
  return `${json}]`
}

/** Data scrubbed for sending: its JSON (functions as placeholders) and the callbacks it holds, `"id":path` entries without braces ('' when none). */
export interface Scrubbed {
  json: string
  callbacks: string
}

/**
 * Encodes `value` (an argument list, or one argument) for sending: functions
 * inside it are registered through `register` and written as placeholders;
 * `prefix` is the path of `value` inside the message's `arguments`. When
 * encoding throws (a BigInt, a cycle), the ids already given are handed to
 * `unregister` before the error goes on, so nothing stays registered.
 */
export function scrub(value: unknown, prefix: ReadonlyArray<string | number>, register: RegisterCallback, unregister: (id: number) => void): Scrubbed {
  const found: FoundFunction[] = []
  findFunctions(value, [], found)
  if (found.length === 0) return { json: JSON.stringify(value) ?? 'null', callbacks: '' }
  const ids: number[] = []
  try {
    let callbacks = ''
    for (const f of found) {
      const id = register(f.fn)
      ids.push(id)
      callbacks += `${callbacks === '' ? '' : ','}"${id}":${JSON.stringify([...prefix, ...f.path])}`
    }
    return { json: JSON.stringify(value, functionPlaceholder), callbacks }
  } catch (err) {
    for (const id of ids) unregister(id)
    throw err
  }
}

/** One dnode message as text. `argumentsJson` is a JSON array; `callbacks` the entries of the callbacks object, without braces. */
export function encodeMessage(method: string | number, argumentsJson: string, callbacks = ''): string {
  return `{"method":${methodJson(method)},"arguments":${argumentsJson},"callbacks":{${callbacks}}}`
}

/**
 * A call of the peer's callback `id` with `args`; functions among them become
 * callbacks through `register`. Throws when `args` cannot be encoded.
 */
export function encodeInvocation(id: number, args: unknown[], register: RegisterCallback, unregister: (id: number) => void): string {
  if (allPrimitive(args)) return encodeMessage(id, primitiveArrayJson(args))
  const s = scrub(args, [], register, unregister)
  return encodeMessage(id, s.json, s.callbacks)
}
