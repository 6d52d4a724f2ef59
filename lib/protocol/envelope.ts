import { kiteFromWire, type KiteIdentity } from './kite.js'
import type { WireError } from '../errors.js'
import { allPrimitive, encodeMessage, primitiveArrayJson, primitiveJson, scrub, type RegisterCallback } from '../dnode/encode.js'

/** Credentials carried by a call (spec §5.1). */
export interface KiteAuth {
  /** `kiteKey`, `token`, or a custom type such as `sessionID`. */
  type: string
  key: string
  /**
   * Remembered credentials (a fastify-kite extension, WebSocket only), asked
   * for: "remember this key for this connection". A kite that does answers with
   * `authRemembered`; Go kites and kite.js ignore the field.
   */
  remember?: boolean
  /**
   * Remembered credentials, used: instead of the key, "the key this connection
   * passed before" (sent only after an answer said `authRemembered`). The kite
   * fills `key` in with the remembered key before handlers see it.
   */
  remembered?: boolean
}

/** The first and only dnode argument of every kite call (spec §3.1). */
export interface CallEnvelope {
  kite: KiteIdentity | null
  authentication: KiteAuth | null
  withArgs: unknown[]
}

/** The reply passed to the response callback (spec §3.2). */
export interface KiteResponse {
  error: WireError | null
  result: unknown
  /** The answer's `authRemembered`: the kite remembers the credentials this call passed with (see KiteAuth.remembered). */
  remembered?: boolean
}

/**
 * Reads an envelope from untrusted arguments. Returns the problem as a string
 * when it is not one. A scalar `withArgs` (sent by kite.js's promise API) is
 * taken as a single argument; `null` means no arguments. With `readKite`
 * false the claimed identity is skipped (it only counts on a connection's
 * first call).
 */
export function parseEnvelope(args: unknown[], readKite = true): CallEnvelope | string {
  if (args.length !== 1) return `expected 1 argument, got ${args.length}`
  const env = args[0]
  if (env === null || typeof env !== 'object' || Array.isArray(env)) return 'the argument must be an object'
  const e = env as Record<string, unknown>
  let kite: KiteIdentity | null = null
  if (readKite && e.kite !== undefined && e.kite !== null) {
    kite = kiteFromWire(e.kite)
    if (kite === null) return 'kite must be an object of strings'
  }
  let authentication: KiteAuth | null = null
  const a = e.authentication
  if (a !== undefined && a !== null) {
    if (typeof a !== 'object' || Array.isArray(a)) return 'authentication must be an object'
    const { type, key } = a as Record<string, unknown>
    if (typeof type !== 'string') return 'authentication.type must be a string'
    const { remember, remembered } = a as Record<string, unknown>
    authentication = { type, key: typeof key === 'string' ? key : '', remember: remember === true, remembered: remembered === true }
  }
  const w = e.withArgs
  const withArgs = w === undefined || w === null ? [] : Array.isArray(w) ? w : [w]
  return { kite, authentication, withArgs }
}

/** A response received through a response callback, in G's one-object form or J's `(err, result)` form. */
export function parseResponse(args: unknown[]): KiteResponse | null {
  if (args.length === 1) {
    const r = args[0]
    // kite.js answers `callback(null)` as `[null]`: a success with no result.
    if (r === null) return { error: null, result: null }
    if (r === null || typeof r !== 'object' || Array.isArray(r)) return null
    const o = r as Record<string, unknown>
    if (!('error' in o) && !('result' in o)) return null
    const error = (o.error ?? null) as KiteResponse['error']
    return o.authRemembered === true ? { error, result: o.result ?? null, remembered: true } : { error, result: o.result ?? null }
  }
  if (args.length === 2) {
    return { error: (args[0] ?? null) as KiteResponse['error'], result: args[1] ?? null }
  }
  return null
}

// Encoding, the other half: what this side sends. Every call and answer is
// built from cached pieces of JSON around the per-call parts.

/**
 * The fixed start of every call envelope one side sends, up to `withArgs`:
 * `{"kite":…,"authentication":…,"responseCallback":"[Function]","withArgs":`.
 * Built once per identity and credentials; a call appends its arguments.
 */
export function envelopeHead(kite: KiteIdentity, auth: KiteAuth | null): string {
  return `{"kite":${JSON.stringify(kite)},"authentication":${JSON.stringify(auth)},"responseCallback":"[Function]","withArgs":`
}

/** The head with a trace context in an extra envelope field (Go kites and kite.js ignore it). */
export function withTraceContext(head: string, trace: object): string {
  return `{"traceContext":${JSON.stringify(trace)},${head.slice(1)}`
}

/**
 * A kite call as a dnode message: the envelope (`head` + `withArgs`) as the
 * only argument, its response callback `responseId` at `[0,"responseCallback"]`.
 * Functions among `withArgs` are registered through `register`; throws when
 * `withArgs` cannot be encoded (then none stays registered).
 */
export function encodeCall(method: string, responseId: number, head: string, withArgs: unknown[], register: RegisterCallback, unregister: (id: number) => void): string {
  if (allPrimitive(withArgs)) return encodeMessage(method, `[${head}${primitiveArrayJson(withArgs)}}]`, `"${responseId}":[0,"responseCallback"]`)
  const s = scrub(withArgs, [0, 'withArgs'], register, unregister)
  return encodeMessage(method, `[${head}${s.json}}]`, `"${responseId}":[0,"responseCallback"]${s.callbacks === '' ? '' : ','}${s.callbacks}`)
}

/** A failed call's answer, in the one-object form (spec §3.2). */
export function encodeErrorResponse(responseId: number, error: WireError): string {
  return encodeMessage(responseId, `[{"error":${JSON.stringify(error)},"result":null}]`)
}

/** A successful call's answer whose result is JSON already (serialized by the method's result schema). */
export function encodeSerializedResponse(responseId: number, resultJson: string, remembered = false): string {
  return encodeMessage(responseId, `[{"error":null,"result":${resultJson}${remembered ? REMEMBERED : ''}}]`)
}

/** What an answer adds when the kite remembers the credentials the call passed with (KiteAuth.remembered). */
const REMEMBERED = ',"authRemembered":true'

/**
 * A successful call's answer, in the one-object form. A plain value has
 * nothing to scrub; functions inside an object result become callbacks.
 * Throws when the result cannot be encoded (a BigInt, a cycle).
 */
export function encodeResultResponse(responseId: number, result: unknown, register: RegisterCallback, unregister: (id: number) => void, remembered = false): string {
  const extra = remembered ? REMEMBERED : ''
  if (result === undefined || result === null || typeof result !== 'object') {
    return encodeMessage(responseId, `[{"error":null,"result":${primitiveJson(result)}${extra}}]`)
  }
  const s = scrub(result, [0, 'result'], register, unregister)
  return encodeMessage(responseId, `[{"error":null,"result":${s.json}${extra}}]`, s.callbacks)
}
