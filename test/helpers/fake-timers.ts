import type { Timers } from '../../lib/connection/pending.js'

/** Timers that run only when the test advances time. */
export class FakeTimers implements Timers {
  now = 0
  private next = 1
  private readonly timers = new Map<number, { at: number; every: number; fn: () => void }>()

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++
    this.timers.set(id, { at: this.now + ms, every: 0, fn })
    return id
  }

  setInterval(fn: () => void, ms: number): unknown {
    const id = this.next++
    this.timers.set(id, { at: this.now + ms, every: ms, fn })
    return id
  }

  clearTimeout(id: unknown): void {
    this.timers.delete(id as number)
  }

  clearInterval(id: unknown): void {
    this.timers.delete(id as number)
  }

  get active(): number {
    return this.timers.size
  }

  /** Moves time on by `ms`, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    const end = this.now + ms
    for (;;) {
      let due: [number, { at: number; every: number; fn: () => void }] | null = null
      for (const entry of this.timers) if (entry[1].at <= end && (due === null || entry[1].at < due[1].at)) due = entry
      if (due === null) break
      const [id, timer] = due
      this.now = timer.at
      if (timer.every > 0) timer.at += timer.every
      else this.timers.delete(id)
      timer.fn()
    }
    this.now = end
  }
}

