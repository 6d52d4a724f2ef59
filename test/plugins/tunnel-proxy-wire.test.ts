import t from 'tap'
import { randomUUID } from 'node:crypto'
import WebSocket from 'ws'
import { startKontrol } from '../helpers/kontrol.js'
import { connectClient, startKite } from '../helpers/server.js'
import { startPrivateKite, startReverseProxy, startTunnelProxy } from '../helpers/proxy.js'
import { decodeJwt } from '../../lib/kitekey.js'

// Spec §12 on the wire, with the upstream Go kite's and Go client's part played in raw frames (there is no
// Go toolchain here): the frames below are written as the recorded Go traffic in test/fixtures/frames has
// them (`"callbacks":{"0":[0,"responseCallback"]}`, `Origin: http://<host>`, 3-digit server and 20-hex
// session ids), and every frame the proxies send back is compared whole.
t.setTimeout(240000)

/** A Go kite's identity. */
const goKite = { name: 'gokite', username: 'alice', id: randomUUID(), environment: 'test', region: 'test', version: '1.0.0', hostname: 'vm' }

/** A call as the Go kite writes it. */
function goCall(method: string, withArgs: unknown[], auth: { type: string; key: string } | null, id = 0): string {
  return JSON.stringify({ method, arguments: [{ kite: goKite, authentication: auth, responseCallback: '[Function]', withArgs }], callbacks: { [id]: [0, 'responseCallback'] } })
}

/** A response as the Go kite writes it. */
const goResponse = (id: number, result: unknown): string => JSON.stringify({ method: id, arguments: [{ error: null, result }], callbacks: {} })

/** A SockJS WebSocket session as the Go client's sockjs-go speaks it: send one message per frame, read messages one by one. */
class SockjsPeer {
  private readonly messages: string[] = []
  private waiting: ((m: string) => void) | null = null
  readonly frames: string[] = []

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = data.toString()
      this.frames.push(frame)
      if (!frame.startsWith('a[')) return
      for (const m of JSON.parse(frame.slice(1)) as string[]) this.messages.push(m)
      this.flush()
    })
  }

  /** Dials; resolves after the open frame `o` (listened for from the start: it may come with the 101 response). */
  static async open(url: string, origin: string): Promise<SockjsPeer> {
    const peer = new SockjsPeer(new WebSocket(url, { headers: { Origin: origin } }))
    await new Promise<void>((resolve, reject) => {
      peer.ws.once('error', reject)
      peer.ws.once('message', (d) => (d.toString() === 'o' ? resolve() : reject(new Error(`expected o, got ${d.toString()}`))))
    })
    return peer
  }

  private flush(): void {
    if (this.waiting !== null && this.messages.length > 0) {
      const w = this.waiting
      this.waiting = null
      w(this.messages.shift()!)
    }
  }

  /** The next dnode message. */
  next(): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = resolve
      this.flush()
    })
  }

  send(message: string): void {
    this.ws.send(JSON.stringify([message]))
  }
}

t.test('§12.1 tunnelproxy: a Go kite registers, is asked to dial a tunnel, and serves a Go client through it', async (t) => {
  const kontrol = await startKontrol(t)
  const origins: string[] = []
  const proxy = await startTunnelProxy(t, {
    kontrolURL: kontrol.url,
    kiteKey: kontrol.kiteKey('kontrol-owner'),
    setup: (app) =>
      app.addHook('onRequest', async (request) => {
        if (request.url.startsWith('/tunnel/')) origins.push(request.headers.origin ?? '')
      }),
  })
  const host = new URL(proxy.base).host
  const wss = proxy.base.replace('https', 'wss')

  // The Go kite dials the proxy's kite URL (`ws://<PublicHost>/kite`) and calls register("") with its kite.key.
  const kite = await SockjsPeer.open(`${wss}/kite/247/f1e499afcfd0db2386ad/websocket`, `http://${host}`)
  t.teardown(() => kite.ws.terminate())
  kite.send(goCall('register', [''], { type: 'kiteKey', key: kontrol.kiteKey('alice') }))
  const publicURL = `${proxy.base}/proxy?kiteID=${goKite.id}`
  t.equal(await kite.next(), goResponse(0, publicURL), 'register answers "<scheme>://<PublicHost>/proxy?kiteID=<id>", in the Go response shape')

  // A Go client connects to what Kontrol would give it: ws://<PublicHost>/proxy/<srv>/<sess>/websocket?kiteID=<id>.
  const client = await SockjsPeer.open(`${wss}/proxy/123/0123456789abcdef0123/websocket?kiteID=${goKite.id}`, `http://${host}`)
  t.teardown(() => client.ws.terminate())
  const square = JSON.stringify({ method: 'square', arguments: [{ kite: { ...goKite, name: 'goclient', id: randomUUID() }, authentication: null, responseCallback: '[Function]', withArgs: [4] }], callbacks: { '0': [0, 'responseCallback'] } })
  client.send(square)

  // The proxy calls kite.tunnel on the Go kite's own connection.
  const tunnelCall = JSON.parse(await kite.next()) as { method: string; arguments: Array<Record<string, unknown>>; callbacks: Record<string, unknown> }
  t.equal(tunnelCall.method, 'kite.tunnel')
  t.equal(tunnelCall.arguments.length, 1, 'one argument: the kite envelope')
  const envelope = tunnelCall.arguments[0]!
  t.same(Object.keys(envelope), ['kite', 'authentication', 'responseCallback', 'withArgs'], 'the envelope of a Go call')
  t.equal(envelope.authentication, null, 'no credentials: the Go kite trusts calls on the connection it dialed (§13 A4); ours answers kite.tunnel only there')
  t.match(envelope.kite, { name: 'tunnelproxy', version: '0.0.2', username: 'kontrol-owner', environment: 'test' }, 'from the tunnelproxy kite')
  t.equal(envelope.responseCallback, '[Function]')
  const [cbID] = Object.keys(tunnelCall.callbacks)
  t.same(tunnelCall.callbacks, { [cbID!]: [0, 'responseCallback'] }, 'callbacks: the response callback only')
  const withArgs = envelope.withArgs as Array<{ url: string }>
  t.equal(withArgs.length, 1, 'withArgs: [{ url }]')
  t.same(Object.keys(withArgs[0]!), ['url'])
  const m = new RegExp(`^wss://${host.replace(/\./g, '\\.')}/tunnel/123/0123456789abcdef0123/websocket\\?token=([A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+)$`).exec(withArgs[0]!.url)
  t.ok(m, `the URL is ws(s)://<PublicHost>/tunnel/<the client's srv>/<the client's sess>/websocket?token=<jwt>: ${withArgs[0]!.url}`)
  const token = m![1]!
  const { header, claims } = decodeJwt(token)
  t.same(header, { alg: 'RS256', typ: 'JWT' }, 'an RS256 JWT')
  t.same(Object.keys(claims).sort(), ['exp', 'iat', 'nbf', 'seq', 'sub'], 'the claims of §5.6: sub, seq, iat, nbf, exp')
  t.equal(claims.sub, goKite.id, 'sub: the kite ID')
  t.ok(Number.isInteger(claims.seq) && (claims.seq as number) >= 1, 'seq: the tunnel number')
  t.equal((claims.iat as number) - (claims.nbf as number), 60, 'nbf: now − 1 min')
  t.equal((claims.exp as number) - (claims.iat as number), 60, 'exp: now + 60 s (upstream: 1 h + 1 min; one use, checked only by this proxy)')
  t.same(proxy.app.kiteTunnelProxy.verifyToken(token), claims, 'signed with the proxy\'s own key')

  // The Go kite answers, then dials the URL (Origin: http://<host>) and serves its session over it.
  kite.send(goResponse(Number(cbID), null))
  const tunnel = await SockjsPeer.open(withArgs[0]!.url, `http://${host}`)
  t.teardown(() => tunnel.ws.terminate())
  t.equal(await tunnel.next(), square, "the Go client's call arrives through the tunnel unchanged")
  tunnel.send(goResponse(0, 16))
  t.equal(await client.next(), goResponse(0, 16), 'and the answer reaches the Go client unchanged')
  t.equal(proxy.app.kiteTunnelProxy.openTunnels, 1)

  // Our own kite behind the same proxy dials its tunnels as the Go kite does.
  const ours = await startPrivateKite(t, kontrol.url, kontrol.kiteKey('alice'))
  const viaTunnel = await connectClient(t, ours.url, { transport: 'sockjs' })
  t.equal(await viaTunnel.tell('kite.ping'), 'pong')
  t.equal(origins.at(-1), `https://${host}`, 'our kite dials its tunnel with Origin: <http(s)>://<host>, as the Go kite (https for wss)')
})

t.test('§12.2 reverseproxy: a Go kite registers its URL, and a Go client calls it through /proxy/<id>/…', async (t) => {
  const kontrol = await startKontrol(t)
  const proxy = await startReverseProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('proxy-owner') })
  const host = new URL(proxy.base).host
  const wss = proxy.base.replace('https', 'wss')
  // The Go kite's own server (plain http, as upstream's backends always are).
  const backend = await startKite(t)
  const kite = await SockjsPeer.open(`${wss}/kite/247/f1e499afcfd0db2386ad/websocket`, `http://${host}`)
  t.teardown(() => kite.ws.terminate())
  kite.send(goCall('register', [backend.url], { type: 'kiteKey', key: kontrol.kiteKey('alice') }))
  const publicURL = `${proxy.base}/proxy/${goKite.id}`
  t.equal(await kite.next(), goResponse(0, publicURL), 'register answers "<scheme>://<PublicHost>:<PublicPort>/proxy/<kiteID>"')

  const square = goCall('square', [4], null)
  const client = await SockjsPeer.open(`${wss}/proxy/${goKite.id}/247/0123456789abcdef0123/websocket`, `http://${host}`)
  t.teardown(() => client.ws.terminate())
  client.send(square)
  t.equal(await client.next(), goResponse(0, 16), 'SockJS WebSocket at /proxy/<id>/<srv>/<sess>/websocket reaches <kite URL>/<srv>/<sess>/websocket')

  // The Go client's XHR polling: xhr (open), xhr_send, xhr (messages).
  const xhr = `${publicURL}/321/fedcba9876543210fedc`
  t.equal(await (await fetch(`${xhr}/xhr`, { method: 'POST' })).text(), 'o\n')
  t.equal((await fetch(`${xhr}/xhr_send`, { method: 'POST', body: JSON.stringify([square]), headers: { 'Content-Type': 'text/plain' } })).status, 204)
  t.equal(await (await fetch(`${xhr}/xhr`, { method: 'POST' })).text(), `a${JSON.stringify([goResponse(0, 16)])}\n`, 'SockJS XHR polling through the proxy')
  t.ok(proxy.app.kiteReverseProxy.kites.has(goKite.id))
  kite.ws.terminate()
})
