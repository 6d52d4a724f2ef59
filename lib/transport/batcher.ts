import { soon } from '../platform.js'

/**
 * Collects the messages sent during one turn of the event loop and hands
 * them over together (SockJS carries an array of messages per frame), so 32
 * answers made at once cost one frame, not 32.
 */
export class MessageBatcher {
  private outbox: string[] = []
  private scheduled = false

  constructor(private readonly write: (batch: string[]) => void) {}

  push(text: string): void {
    this.outbox.push(text)
    if (!this.scheduled) {
      this.scheduled = true
      soon(this.flush)
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
