import type { KiteIdentity } from '../protocol/kite.js'

/** What a strategy sees of each kite of a pool. */
export interface PoolKite {
  /** The kite's id. */
  readonly id: string
  readonly kite: KiteIdentity
  readonly url: string
  /** Calls in flight to this kite from this pool (including those waiting for its connection). */
  readonly pending: number
  /** Moving average of round trips in ms (answers only), or null before the first answer. */
  readonly latencyMs: number | null
  /** Calls sent to this kite so far. */
  readonly calls: number
}

/** The call being placed. */
export interface StrategyContext {
  readonly method: string
  readonly args: readonly unknown[]
}

/**
 * Chooses a kite among `kites` (never empty; only kites that may take calls
 * now). Returning undefined (or a kite not in the list) fails the call.
 * The array is only valid during the call.
 */
export type PoolStrategy = (kites: readonly PoolKite[], ctx: StrategyContext) => PoolKite | undefined

/** The built-in strategies. */
export type StrategyName = 'random' | 'round-robin' | 'least-pending' | 'latency'

export const STRATEGIES: readonly StrategyName[] = ['random', 'round-robin', 'least-pending', 'latency']

/** Go's behaviour: any kite, uniformly. */
export function randomStrategy(): PoolStrategy {
  return (kites) => kites[Math.floor(Math.random() * kites.length)]
}

/** Each kite in turn. */
export function roundRobinStrategy(): PoolStrategy {
  let next = 0
  return (kites) => {
    if (next >= kites.length) next = 0
    return kites[next++]
  }
}

/** The kite with the fewest calls in flight; ties are taken in turn. */
export function leastPendingStrategy(): PoolStrategy {
  let turn = 0
  return (kites) => {
    const n = kites.length
    const start = turn++ % n
    let best = kites[start]!
    for (let i = 1; i < n; i++) {
      const k = kites[(start + i) % n]!
      if (k.pending < best.pending) best = k
    }
    return best
  }
}

/**
 * The kite with the lowest moving-average round trip, weighed by the calls it
 * already has in flight (`latency × (pending + 1)`). Kites not measured yet
 * go first, and every `exploreEvery`-th call goes to each kite in turn so
 * that averages of kites not chosen stay current.
 */
export function latencyStrategy(exploreEvery = 16): PoolStrategy {
  let count = 0
  let turn = 0
  return (kites) => {
    const n = kites.length
    if (++count % exploreEvery === 0) return kites[turn++ % n]
    let best: PoolKite | undefined
    let bestScore = Infinity
    for (let i = 0; i < n; i++) {
      const k = kites[i]!
      if (k.latencyMs === null) return k
      const score = k.latencyMs * (k.pending + 1)
      if (score < bestScore) {
        best = k
        bestScore = score
      }
    }
    return best
  }
}

/** A fresh strategy (strategies keep their own turn counters) by name, or the function given. */
export function makeStrategy(s: StrategyName | PoolStrategy = 'random'): PoolStrategy {
  if (typeof s === 'function') return s
  switch (s) {
    case 'random':
      return randomStrategy()
    case 'round-robin':
      return roundRobinStrategy()
    case 'least-pending':
      return leastPendingStrategy()
    case 'latency':
      return latencyStrategy()
    default:
      throw new TypeError(`unknown pool strategy ${String(s)} (one of ${STRATEGIES.join(', ')}, or a function)`)
  }
}
