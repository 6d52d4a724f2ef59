import WebSocket from 'ws'

/** A bare WebSocket peer that records what it receives and how it was closed. */
export class RawPeer {
  readonly frames: string[] = []
  closeCode: number | null = null
  closeReason = ''
  private waiters: Array<() => void> = []
  readonly closed: Promise<number>

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      this.frames.push(d.toString())
      this.wake()
    })
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closeCode = code
        this.closeReason = reason.toString()
        this.wake()
        resolve(code)
      }),
    )
  }

  static async open(url: string): Promise<RawPeer> {
    const ws = new WebSocket(url)
    const peer = new RawPeer(ws)
    await new Promise((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    return peer
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const fn of w) fn()
  }

  /** Waits until a received frame matches. */
  async waitFor(pred: (frame: string) => boolean): Promise<string> {
    for (;;) {
      const hit = this.frames.find(pred)
      if (hit !== undefined) return hit
      if (this.closeCode !== null) throw new Error(`closed (${this.closeCode}) before the frame came; got ${JSON.stringify(this.frames)}`)
      await new Promise<void>((r) => this.waiters.push(r))
    }
  }

  send(text: string): void {
    this.ws.send(text)
  }

  close(): void {
    this.ws.terminate()
  }
}

/** The G client's `kite.ping` call with response callback id `id`. */
export function pingCall(id = 0): string {
  return JSON.stringify({
    method: 'kite.ping',
    arguments: [{ kite: { name: 'raw', username: 'u', id: 'x', environment: 'e', region: 'r', version: '1.0.0', hostname: 'h' }, authentication: null, responseCallback: '[Function]', withArgs: null }],
    callbacks: { [id]: [0, 'responseCallback'] },
  })
}

/** A call of `method` with `withArgs`. */
export function call(method: string, withArgs: unknown, id = 0): string {
  return JSON.stringify({ method, arguments: [{ kite: null, authentication: null, responseCallback: '[Function]', withArgs }], callbacks: { [id]: [0, 'responseCallback'] } })
}
