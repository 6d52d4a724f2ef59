import { BoundedCache } from '../cache.js'

/** The two levels a remote warning uses (a pino or Fastify logger). */
export interface WarnLog {
  warn(fields: object, msg: string): void
  debug(fields: object, msg: string): void
}

interface Seen {
  last: number
  suppressed: number
}

/** Peers remembered at most; past that, the peer heard from least recently is forgotten. */
const MAX_PEERS = 10_000

/**
 * Warnings caused by what a peer sent (a malformed or oversized message, a
 * bad envelope, a failed authentication). Remote input must not decide how
 * much we log: each peer address gets at most one warn line per interval;
 * the rest go to debug and are counted, and the next warn line carries that
 * count as `suppressed`. Never error level, never a stack.
 */
export class RemoteWarnings {
  private readonly seen: BoundedCache<string, Seen>

  constructor(
    readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
    maxPeers = MAX_PEERS,
  ) {
    this.seen = new BoundedCache({ maxEntries: maxPeers, clock: now })
  }

  warn(log: WarnLog, peer: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.now()
    const entry = this.seen.get(peer)
    if (entry !== undefined && now - entry.last < this.intervalMs) {
      entry.suppressed++
      log.debug(fields, msg)
      return
    }
    const suppressed = entry?.suppressed ?? 0
    this.seen.set(peer, { last: now, suppressed: 0 })
    log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, msg)
  }
}
