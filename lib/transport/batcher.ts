import { soon } from '../platform.js'

/**
 * Collects the messages sent during one turn of the event loop and hands
 * them over together (SockJS carries an array of messages per frame), so 32
 * answers made at once cost one frame, not 32. `schedule` decides when the
 * turn ends: by default after the I/O of this turn (a server answering the
 * calls of several reads at once); a client flushes at the end of the tick.
 */
export class MessageBatcher {
  private outbox: string[] = []
  private scheduled = false

  constructor(
    private readonly write: (batch: string[]) => void,
    private readonly schedule: (fn: () => void) => void = soon,
  ) {}

  push(text: string): void {
    this.outbox.push(text)
    if (!this.scheduled) {
      this.scheduled = true
      this.schedule(this.flush)
    }
  }

  /** Hands over what is waiting now (also called before a close frame). */
  readonly flush = (): void => {
    this.scheduled = false
    if (this.outbox.length === 0) return
    const batch = this.outbox
    this.outbox = []
    this.write(batch)
  }
}
