import type { FastifyBaseLogger } from 'fastify'
import type { KiteConnection } from '../../lib/connection/connection.js'
import { kiteError } from '../../lib/errors.js'
import type { KiteIdentity } from '../../lib/protocol/kite.js'
import type { KiteRecord, KontrolStorage } from './storage/storage.js'

export interface RegistrySettings {
  /**
   * The heartbeat interval, in seconds: a kite not heard from for this long is
   * overdue (no longer handed out, not yet removed).
   */
  heartbeatSeconds: number
  /** Kites are asked to beat this many ms earlier than the interval, so an on-time kite is never overdue. */
  slackMs: number
  /** A kite not heard from for this long (ms) is gone: heartbeat interval + grace. */
  ttlMs: number
  /** How often stale rows are removed, and refreshes written (ms). */
  sweepMs: number
  clock: () => number
  log: FastifyBaseLogger
}

interface Live {
  kite: KiteIdentity
  url: string
  keyId: string
  /** The connection it registered on; null for HTTP registrations. */
  conn: KiteConnection | null
  lastSeen: number
}

/**
 * Who is alive. Kites registered over WebSocket are pinged over their own
 * connection (`kite.heartbeat`); HTTP ones call `/heartbeat`. Each sign of
 * life marks the kite, and marks are written to storage in one batch per
 * sweep, so 10,000 kites cost one UPDATE a second, not 1,000. A kite that
 * disconnects cleanly is removed at once; one that goes silent stops being
 * returned by queries after `ttlMs` and is removed at the next sweep. When
 * storage is unreachable the marks wait; rows lost meanwhile are written
 * again from memory, so no live registration is lost.
 */
export class Registry {
  private readonly live = new Map<string, Live>()
  private readonly seen = new Set<string>()
  private timer: NodeJS.Timeout | null = null
  private sweeping = false
  /** Kites forgotten because their heartbeats stopped (interval + grace passed), for metrics. */
  missed = 0
  /** Seconds between the heartbeats asked of kites (WebSocket) and told to them (HTTP): the interval less the slack. */
  readonly askSeconds: number
  /** A kite not heard from for this long is overdue: one heartbeat interval, in ms. */
  private readonly overdueMs: number

  constructor(
    private readonly storage: KontrolStorage,
    private readonly s: RegistrySettings,
  ) {
    this.overdueMs = s.heartbeatSeconds * 1000
    // Go kites sleep `time.Duration(seconds) * time.Second` (whole seconds) and read the HTTP
    // register's heartbeatInterval as an int64: whole seconds, rounded down (more slack), from 1 s up.
    const ask = (this.overdueMs - s.slackMs) / 1000
    this.askSeconds = ask >= 1 ? Math.floor(ask) : ask
  }

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.s.sweepMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /** Kites are fresh when heard from within the TTL. */
  freshSince(): number {
    return this.s.clock() - this.s.ttlMs
  }

  /**
   * True when the kite's heartbeat is overdue: not heard from within one
   * interval (kites beat `slackMs` earlier than that). Kites registered here are judged by the time of
   * their last ping; others (registered through another Kontrol on the same
   * database) by their row, which lags by up to one sweep — except on Go
   * Kontrol's tables, whose rows Go refreshes only every minute: there the
   * storage's own freshness rule decides.
   */
  overdue(record: KiteRecord): boolean {
    const now = this.s.clock()
    const entry = this.live.get(record.kite.id)
    if (entry !== undefined) return entry.lastSeen < now - this.overdueMs
    // On Go Kontrol's tables a row is refreshed only every 60–70 s (by Go Kontrol): its age says nothing of a heartbeat.
    if ((this.storage as { layout?: string }).layout === 'go') return false
    return record.updatedAt < now - this.overdueMs - this.s.sweepMs
  }

  get size(): number {
    return this.live.size
  }

  /** Registers (or re-registers) a kite. Refuses an id already registered by another user. */
  async register(kite: KiteIdentity, url: string, keyId: string, conn: KiteConnection | null): Promise<void> {
    const existing = await this.storage.get(kite.id)
    if (existing !== null && existing.kite.username !== kite.username) {
      throw kiteError('KITE_ERR_KONTROL_ID_TAKEN', kite.id)
    }
    await this.storage.upsert(kite, { url, keyId })
    const previous = this.live.get(kite.id)
    this.live.set(kite.id, { kite, url, keyId, conn, lastSeen: this.s.clock() })
    if (conn === null || previous?.conn === conn) return
    if (conn.closed) {
      // It left while storage was written: it is gone already.
      await this.disconnected(kite.id, conn)
      return
    }
    conn.once('close', () => void this.disconnected(kite.id, conn))
    const ping = (): void => {
      if (this.heard(kite.id, conn) || conn.closed || this.live.has(kite.id)) return
      // Forgotten while silent (a stalled event loop, a slow network), yet it pings again over
      // the same connection: it is alive, so it is registered again (as Go Kontrol's updater does).
      this.live.set(kite.id, { kite, url, keyId, conn, lastSeen: this.s.clock() })
      this.seen.add(kite.id)
      this.s.log.info({ kite: kite.id }, 'kontrol: a kite thought gone pinged again; registered again')
    }
    conn.tell('kite.heartbeat', [this.askSeconds, ping], { timeout: 4000 }).catch((err: Error) => {
      this.s.log.warn({ kite: kite.id, err: err.message }, 'kontrol: kite.heartbeat request failed')
    })
  }

  /** A sign of life over a connection (WebSocket ping) or over HTTP (conn null). */
  heard(id: string, conn: KiteConnection | null): boolean {
    const entry = this.live.get(id)
    if (entry === undefined || entry.conn !== conn) return false
    entry.lastSeen = this.s.clock()
    this.seen.add(id)
    return true
  }

  private async disconnected(id: string, conn: KiteConnection): Promise<void> {
    const entry = this.live.get(id)
    if (entry?.conn !== conn) return
    this.live.delete(id)
    this.seen.delete(id)
    try {
      await this.storage.remove(id)
    } catch (err) {
      this.s.log.warn({ kite: id, err: (err as Error).message }, 'kontrol: cannot remove a disconnected kite; it will expire')
    }
  }

  /** Writes marks, re-writes rows storage lost, forgets silent kites, removes stale rows. */
  async sweep(): Promise<void> {
    if (this.sweeping) return
    this.sweeping = true
    try {
      const cutoff = this.freshSince()
      for (const [id, entry] of this.live) {
        if (entry.lastSeen < cutoff) {
          this.missed++
          this.live.delete(id)
          this.seen.delete(id)
        }
      }
      const ids = [...this.seen]
      this.seen.clear()
      if (ids.length > 0) {
        let missing: string[]
        try {
          missing = await this.storage.touch(ids)
        } catch (err) {
          for (const id of ids) this.seen.add(id)
          throw err
        }
        for (const id of missing) {
          const entry = this.live.get(id)
          if (entry !== undefined) await this.storage.upsert(entry.kite, { url: entry.url, keyId: entry.keyId })
        }
      }
      await this.storage.removeStale(cutoff)
    } catch (err) {
      this.s.log.warn({ err: (err as Error).message }, 'kontrol: storage unavailable during sweep; will retry')
    } finally {
      this.sweeping = false
    }
  }
}
