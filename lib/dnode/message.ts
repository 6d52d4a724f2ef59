import sjson from 'secure-json-parse'
import type { DnodeLimits } from './limits.js'
import { utf8Length } from '../platform.js'

/** A path into a message's `arguments`: numbers (G) or strings (J) for array indices. */
export type CallbackPath = ReadonlyArray<string | number>

/** One dnode message as it travels (spec §2.1). */
export interface DnodeMessage {
  /** A method name, or the id of a callback the receiver sent earlier. */
  method: string | number
  arguments: unknown[]
  /** Callback id (decimal string) -> path into `arguments`. */
  callbacks: Record<string, CallbackPath>
}

/**
 * Why a message was refused, with the WebSocket close code that fits
 * (1007 invalid payload, 1008 policy violation, 1009 too big).
 */
export class ProtocolError extends Error {
  override name = 'ProtocolError'
  /** Every refusal of the parser has this one code (lib/errors.ts); `closeCode` says which kind. */
  readonly code = 'KITE_ERR_DNODE_INVALID'
  constructor(
    message: string,
    readonly closeCode: 1007 | 1008 | 1009,
  ) {
    super(message)
  }
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

// Scratch stacks for the depth walk, reused so that a walk allocates nothing.
const walkNodes: unknown[] = []
const walkDepths: number[] = []

/**
 * True when arrays and objects in `root` nest deeper than `limit` (the root
 * counts as 1). Iterative, so no input can exhaust the call stack; V8's
 * JSON.parse is iterative too, which is why this runs after parsing rather
 * than as a character scan before it (a walk over nodes is several times
 * cheaper than a scan over characters).
 */
export function depthExceeds(root: unknown, limit: number): boolean {
  if (root === null || typeof root !== 'object') return false
  let top = 0
  walkNodes[top] = root
  walkDepths[top++] = 1
  let exceeded = false
  while (top > 0) {
    const node = walkNodes[--top] as object
    const depth = walkDepths[top]!
    walkNodes[top] = undefined
    if (depth > limit) {
      exceeded = true
      break
    }
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const item: unknown = node[i]
        if (item !== null && typeof item === 'object') {
          walkNodes[top] = item
          walkDepths[top++] = depth + 1
        }
      }
    } else {
      for (const key in node) {
        const item = (node as Record<string, unknown>)[key]
        if (item !== null && typeof item === 'object') {
          walkNodes[top] = item
          walkDepths[top++] = depth + 1
        }
      }
    }
  }
  while (top > 0) walkNodes[--top] = undefined
  if (walkNodes.length > 1024) walkNodes.length = walkDepths.length = 0
  return exceeded
}

/**
 * JSON.parse that drops `__proto__` keys, so no later merge can reach a
 * prototype. A text that mentions no "proto" and has no \u escape (which
 * could spell it) cannot hold such a key, and skips the slower scan.
 */
export function safeJsonParse(text: string): unknown {
  if (!text.includes('proto') && !text.includes('\\u')) return JSON.parse(text)
  return sjson.parse(text, undefined, { protoAction: 'remove', constructorAction: 'ignore' })
}

/** True when `text` has at most `limit` opening brackets, so that it cannot nest deeper than `limit`. */
function fewBrackets(text: string, limit: number): boolean {
  let count = 0
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++count > limit) return false
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++count > limit) return false
  return true
}

function checkPath(path: unknown, maxDepth: number): CallbackPath {
  if (!Array.isArray(path) || path.length === 0 || path.length > maxDepth) {
    throw new ProtocolError('invalid callback path', 1007)
  }
  for (const step of path) {
    if (typeof step === 'number') {
      if (!Number.isInteger(step) || step < 0) throw new ProtocolError('invalid callback path index', 1007)
    } else if (typeof step !== 'string' || FORBIDDEN_KEYS.has(step)) {
      throw new ProtocolError('invalid callback path element', 1007)
    }
  }
  return path as CallbackPath
}

/** A decimal id of at most 15 digits (a safe integer). */
function isCallbackId(id: string): boolean {
  if (id.length === 0 || id.length > 15) return false
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

function checkCallbacks(raw: unknown, limits: DnodeLimits): Record<string, CallbackPath> {
  if (raw === undefined || raw === null) return {}
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ProtocolError('callbacks must be an object', 1007)
  const callbacks = raw as Record<string, unknown>
  let count = 0
  for (const id in callbacks) {
    if (++count > limits.maxCallbacks) {
      throw new ProtocolError(`too many callbacks (limit ${limits.maxCallbacks})`, 1008)
    }
    if (!isCallbackId(id)) throw new ProtocolError('invalid callback id', 1007)
    callbacks[id] = checkPath(callbacks[id], limits.maxDepth)
  }
  return callbacks as Record<string, CallbackPath>
}

/**
 * Parses and checks one dnode message. Throws ProtocolError (never anything
 * else) when the text is too large, too deep, not JSON, or not a dnode message.
 * `links` and unknown keys are ignored.
 */
export function parseMessage(text: string, limits: DnodeLimits): DnodeMessage {
  // Length in UTF-16 units is at most the byte length, and at least a third of it.
  if (text.length > limits.maxMessageBytes || (text.length * 3 > limits.maxMessageBytes && utf8Length(text) > limits.maxMessageBytes)) {
    throw new ProtocolError(`message too large (limit ${limits.maxMessageBytes} bytes)`, 1009)
  }
  let value: unknown
  try {
    value = safeJsonParse(text)
  } catch {
    throw new ProtocolError('malformed JSON', 1007)
  }
  // Nesting needs brackets: a text too short to hold more than maxDepth pairs (an answer), or with
  // few of them (every usual message), skips the walk.
  if (text.length > 2 * limits.maxDepth && !fewBrackets(text, limits.maxDepth) && depthExceeds(value, limits.maxDepth)) {
    throw new ProtocolError(`message nested too deeply (limit ${limits.maxDepth})`, 1008)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProtocolError('a dnode message must be a JSON object', 1007)
  }
  const msg = value as Record<string, unknown>
  const method = msg.method
  if (typeof method === 'string') {
    if (method.length === 0 || method.length > limits.maxMethodLength) {
      throw new ProtocolError('invalid method name length', 1008)
    }
  } else if (typeof method !== 'number' || !Number.isInteger(method) || method < 0) {
    throw new ProtocolError('method must be a string or a callback id', 1007)
  }
  let args = msg.arguments
  if (args === undefined || args === null) args = []
  else if (!Array.isArray(args)) throw new ProtocolError('arguments must be an array', 1007)
  return { method, arguments: args as unknown[], callbacks: checkCallbacks(msg.callbacks, limits) }
}
