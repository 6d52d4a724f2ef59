/** Limits applied to every incoming dnode message before anything else looks at it. */
export interface DnodeLimits {
  /** Largest message accepted, in bytes of JSON text. Default 1 MiB. */
  maxMessageBytes: number
  /** Deepest nesting of arrays and objects in a message. Default 64. */
  maxDepth: number
  /** Most callbacks one message may carry. Default 256. */
  maxCallbacks: number
  /** Longest method name accepted. Default 256. */
  maxMethodLength: number
}

export const defaultDnodeLimits: Readonly<DnodeLimits> = Object.freeze({
  maxMessageBytes: 1024 * 1024,
  maxDepth: 64,
  maxCallbacks: 256,
  maxMethodLength: 256,
})

/** Merges user limits over the defaults and checks that each is a positive integer. */
export function resolveLimits(partial: Partial<DnodeLimits> = {}): Readonly<DnodeLimits> {
  const limits = { ...defaultDnodeLimits, ...partial }
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) {
      throw new TypeError(`dnode limit ${key} must be a positive integer, got ${String(value)}`)
    }
  }
  return Object.freeze(limits)
}
