import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ConnectionSink } from '../../../lib/connection/connection.js'
import { WriteGate, type BackpressureOptions } from '../../../lib/connection/backpressure.js'
import type { SessionEndpoint, SessionHost } from '../kite.js'
import { closeFrame, HEARTBEAT_FRAME, messagesFrame, OPEN_FRAME, parseClientPayload } from './sockjs-frames.js'

/** A poll waiting for something to send. */
interface AttachedPoll {
  answer: (frame: string) => void
}

/** An `xhr_send` held while the outbox is over its limit. */
interface HeldSend {
  bytes: number
  release: (accepted: boolean) => void
}

/**
 * One SockJS XHR-polling session (spec §1.5, §1.7): messages wait in an
 * outbox until a poll takes them; an attached poll gets `h` after the
 * heartbeat period; with no poll attached for the disconnect delay the
 * session ends.
 *
 * The outbox is bounded in bytes: above `maxBufferedBytes` the session stops
 * reading (each `xhr_send` is held, its messages unread, until a poll drains
 * the outbox), and a session that stays above the limit for the grace period
 * is closed with 1008 and its outbox dropped.
 */
export class XhrSession implements ConnectionSink {
  conn: SessionEndpoint | null = null
  private outbox: string[] = []
  private outboxBytes = 0
  private poll: AttachedPoll | null = null
  private closeFrameText: string | null = null
  private timer: NodeJS.Timeout | null = null
  private held: HeldSend[] = []
  private heldBytes = 0
  readonly gate: WriteGate

  constructor(
    readonly id: string,
    private readonly sessions: XhrSessions,
  ) {
    this.armExpiry()
    this.gate = new WriteGate(sessions.backpressure, {
      queued: () => this.outboxBytes,
      pause: () => this.conn?.log.debug({ bufferedBytes: this.outboxBytes }, 'XHR peer does not poll: its sends are held'),
      resume: () => this.releaseHeld(true),
      overflow: () => {
        this.conn?.warnRemote({ bufferedBytes: this.outboxBytes, maxBufferedBytes: sessions.backpressure.maxBufferedBytes }, 'closing connection: the peer does not poll what it is sent')
        this.outbox = []
        this.outboxBytes = 0
        if (this.conn !== null) this.conn.close(1008, 'peer does not read: too much data queued')
        else this.close(1008, 'peer does not read: too much data queued')
      },
    })
  }

  /** Bytes waiting in the outbox. */
  get bufferedBytes(): number {
    return this.outboxBytes
  }

  /**
   * Resolves true when the messages of an `xhr_send` of `bytes` may be read
   * now or once the outbox drains; false when the session closed meanwhile
   * (or the held sends would pass the limit too, which closes it).
   */
  admit(bytes: number): Promise<boolean> | boolean {
    if (this.closeFrameText !== null) return false
    if (!this.gate.paused) return true
    if (this.heldBytes + bytes > this.sessions.backpressure.maxBufferedBytes) {
      this.gate.dispose()
      this.conn?.warnRemote({ heldBytes: this.heldBytes + bytes }, 'closing connection: the peer sends on while it does not poll')
      this.outbox = []
      this.outboxBytes = 0
      if (this.conn !== null) this.conn.close(1008, 'peer does not read: too much data queued')
      return false
    }
    this.heldBytes += bytes
    return new Promise<boolean>((release) => this.held.push({ bytes, release }))
  }

  private releaseHeld(accepted: boolean): void {
    const held = this.held
    this.held = []
    this.heldBytes = 0
    for (const h of held) h.release(accepted)
  }

  get isClosed(): boolean {
    return this.closeFrameText !== null
  }

  send(text: string): void {
    if (this.closeFrameText !== null) return
    this.outbox.push(text)
    this.outboxBytes += text.length
    if (this.poll !== null) this.answerPoll(messagesFrame(this.takeOutbox()))
    else this.gate.check()
  }

  close(code: number, reason: string): void {
    if (this.closeFrameText !== null) return
    const pending = this.takeOutbox()
    this.closeFrameText = closeFrame(code, reason)
    if (this.poll !== null) this.answerPoll(pending.length > 0 ? messagesFrame(pending) : this.closeFrameText)
    else if (pending.length > 0) this.outbox = pending
    this.gate.dispose()
    this.releaseHeld(false)
    this.end()
  }

  private takeOutbox(): string[] {
    const out = this.outbox
    this.outbox = []
    this.outboxBytes = 0
    return out
  }

  private answerPoll(frame: string): void {
    const poll = this.poll
    this.poll = null
    this.armExpiry()
    poll?.answer(frame)
  }

  /** Attaches a poll; answers at once when there is something to say. */
  attach(answer: (frame: string) => void): void {
    if (this.poll !== null) {
      answer(closeFrame(2010, 'Another connection still open'))
      return
    }
    if (this.outbox.length > 0) {
      answer(messagesFrame(this.takeOutbox()))
      return
    }
    if (this.closeFrameText !== null) {
      answer(this.closeFrameText)
      return
    }
    this.poll = { answer }
    this.clearTimer()
    this.timer = setTimeout(() => this.answerPoll(HEARTBEAT_FRAME), this.sessions.heartbeatMs)
    this.timer.unref()
  }

  /** The HTTP connection of the attached poll went away: sockjs-go ends the session at once. */
  pollAborted(answer: (frame: string) => void): void {
    if (this.poll?.answer !== answer) return
    this.poll = null
    this.close(1002, 'Connection interrupted')
  }

  private armExpiry(): void {
    this.clearTimer()
    this.timer = setTimeout(() => {
      if (this.closeFrameText === null) this.close(3000, 'Go away!')
      this.sessions.forget(this)
    }, this.sessions.disconnectDelayMs)
    this.timer.unref()
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  /** Connection closed: tell the kite; the session stays a while to hand its close frame to the next poll. */
  private end(): void {
    this.conn?.transportClosed()
  }

  /** Drops every timer (server shutdown). */
  dispose(): void {
    this.gate.dispose()
    this.releaseHeld(false)
    this.clearTimer()
    if (this.poll !== null) this.answerPoll(this.closeFrameText ?? closeFrame(3000, 'Go away!'))
    this.clearTimer()
  }
}

/** The XHR sessions of one kite, keyed by the session id alone (as sockjs-go does). */
export class XhrSessions {
  private readonly sessions = new Map<string, XhrSession>()

  constructor(
    private readonly kite: SessionHost,
    readonly heartbeatMs: number,
    readonly disconnectDelayMs: number,
    readonly backpressure: BackpressureOptions,
  ) {}

  get size(): number {
    return this.sessions.size
  }

  forget(session: XhrSession): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id)
  }

  /** POST …/xhr: opens a session (answers `o`) or waits for the next frame. */
  async poll(request: FastifyRequest, reply: FastifyReply, sessionId: string): Promise<string> {
    let session = this.sessions.get(sessionId)
    if (session === undefined) {
      session = new XhrSession(sessionId, this)
      const conn = this.kite.accept({ sink: session, transport: 'sockjs-xhr', remoteAddress: request.ip, request })
      if (conn === null) {
        session.dispose()
        return `${closeFrame(3000, 'Go away!')}\n`
      }
      session.conn = conn
      this.sessions.set(sessionId, session)
      return `${OPEN_FRAME}\n`
    }
    const s = session
    return new Promise<string>((resolve) => {
      const answer = (frame: string): void => resolve(`${frame}\n`)
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) s.pollAborted(answer)
      })
      s.attach(answer)
    })
  }

  /** POST …/xhr_send: hands each message to the session's connection (held while the session's outbox is over its limit). */
  async send(sessionId: string, body: unknown, reply: FastifyReply): Promise<string> {
    const session = this.sessions.get(sessionId)
    if (session === undefined || session.conn === null || session.isClosed) {
      reply.code(404)
      return ''
    }
    if (typeof body !== 'string' || body.length === 0) {
      reply.code(500)
      return 'Payload expected.'
    }
    const messages = parseClientPayload(body)
    if (messages === null) {
      reply.code(500)
      return 'Broken JSON encoding.'
    }
    const admitted = session.admit(body.length)
    if (admitted !== true && !(await admitted)) {
      reply.code(404)
      return ''
    }
    const conn = session.conn
    for (const m of messages) conn.receive(m)
    reply.code(204)
    return ''
  }

  /** Ends every session and answers every waiting poll (server shutdown). */
  closeAll(): void {
    for (const session of this.sessions.values()) session.dispose()
    this.sessions.clear()
  }
}
