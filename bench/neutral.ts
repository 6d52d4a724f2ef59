import type { Socket } from 'node:net'
import WebSocket from 'ws'

/**
 * The floor of `npm run bench`: a minimal hand-written dnode client, no
 * framework. It sends the very message a KiteClient sends for `tell(method, 4)`
 * — `{"method", "arguments": [{kite, authentication, withArgs: [4],
 * responseCallback: "[Function]"}], "callbacks": {"<id>": [0, "responseCallback"]}}`
 * — and parses each response with one JSON.parse (two with SockJS framing).
 * With a token it asks the kite to remember it (`"remember":true`) and refers
 * to it (`{"type":"token","key":"","remembered":true}`) once an answer said
 * the kite does, as KiteClient does.
 * It writes as a careful hand-written client would: the socket is corked until
 * the tick ends (calls started together leave in one write), and on SockJS the
 * messages of one tick go in one frame. KiteClient / this is what the client
 * framework costs.
 */
export type OneCall = () => Promise<unknown>

const KITE = JSON.stringify({ username: 'unknown', environment: 'unknown', name: 'kite-client', version: '1.0.0', region: 'unknown', hostname: 'bench-host', id: '4b0c6c1e-6c1e-4f47-9d53-2c3f0d3b8a51' })

interface Response {
  method: number
  arguments: [{ error: unknown; result: unknown; authRemembered?: boolean }]
}

function text(data: WebSocket.RawData): string {
  return Buffer.isBuffer(data) ? data.toString() : Buffer.from(data as ArrayBuffer).toString()
}

/** A neutral client on `url` (a kite's `…/kite` URL); `sockjs` dials the SockJS WebSocket endpoint. */
export async function neutralClient(url: string, sockjs: boolean, method: string, token: string | null): Promise<{ call: OneCall; close: () => void }> {
  const ws = new WebSocket(sockjs ? `${url.replace(/^http/, 'ws')}/123/${'0123456789abcdef0123'}/websocket` : url.replace(/^http/, 'ws'))
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>()
  const settle = (message: string): void => {
    const msg = JSON.parse(message) as Response
    const p = pending.get(msg.method)
    if (p === undefined) return
    pending.delete(msg.method)
    const r = msg.arguments[0]
    // The kite remembers the token (remembered credentials): later calls refer to it, as KiteClient's do.
    if (r.authRemembered === true) head = headWith('{"type":"token","key":"","remembered":true}')
    if (r.error === null || r.error === undefined) p.resolve(r.result)
    else p.reject(r.error)
  }
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject)
    if (!sockjs) ws.once('open', () => resolve())
    ws.on('message', (data) => {
      const t = text(data)
      if (!sockjs) return settle(t)
      if (t[0] === 'o') return resolve()
      if (t[0] === 'a') for (const m of JSON.parse(t.slice(1)) as string[]) settle(m)
    })
  })
  const headWith = (auth: string): string => `{"method":${JSON.stringify(method)},"arguments":[{"kite":${KITE},"authentication":${auth},"responseCallback":"[Function]","withArgs":[4]}],"callbacks":{"`
  let head = headWith(token === null ? 'null' : JSON.stringify({ type: 'token', key: token, remember: true }))
  let next = 0
  const socket = (ws as unknown as { _socket: Socket })._socket
  let corked = false
  let batch: string[] = []
  const flush = (): void => {
    corked = false
    if (sockjs) {
      ws.send(JSON.stringify(batch))
      batch = []
    }
    socket.uncork()
  }
  const call: OneCall = () =>
    new Promise((resolve, reject) => {
      const id = next++
      pending.set(id, { resolve, reject })
      const message = `${head}${id}":[0,"responseCallback"]}}`
      if (!corked) {
        corked = true
        socket.cork()
        process.nextTick(flush)
      }
      if (sockjs) batch.push(message)
      else ws.send(message)
    })
  return { call, close: () => ws.close() }
}
