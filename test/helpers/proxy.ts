import { createRequire } from 'node:module'
import Fastify, { type FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import type * as KitejsHelpers from './kitejs.cjs'
import { withTrustedTestCA } from './tls.js'
import { connectClient } from './server.js'
import { kiteReverseProxy, type ReverseProxyOptions } from '../../plugins/reverse-proxy/index.js'
import { kiteTunnelProxy, type TunnelProxyOptions } from '../../plugins/tunnel-proxy/index.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { kontrolRegister } from '../../plugins/kontrol-register/index.js'
import { kiteServer } from '../../plugins/kite-server/index.js'
import type { GetKitesResult } from '../../lib/protocol/kontrol.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Every socket of a proxy test (ws, fetch, kite processes) trusts this CA through NODE_EXTRA_CA_CERTS. */
export const certs = withTrustedTestCA()
const require = createRequire(import.meta.url)
/** The kite.js 1.0.13 peer. */
export const kitejs = require('./kitejs.cjs') as typeof KitejsHelpers
const quiet = process.env.KITE_TEST_LOG === '1' ? { level: 'debug' } : false

export interface StartedProxy {
  app: FastifyInstance
  /** `https://127.0.0.1:<port>` */
  base: string
}

interface ProxyStart {
  kontrolURL: string
  /** The proxy's kite.key (also what its kiteAuth trusts). */
  kiteKey: string
  /** Port to listen on (default a free one). */
  port?: number
  /** Called before the proxy listens (to add hooks). */
  setup?: (app: FastifyInstance) => void
}

/** A reverse proxy over TLS (the test CA), registered with Kontrol as `proxy`. */
export async function startReverseProxy(t: Teardown, s: ProxyStart, options: ReverseProxyOptions = {}): Promise<StartedProxy> {
  return startProxyApp(t, s, (app) => app.register(kiteReverseProxy, { publicHost: '127.0.0.1', region: 'test', environment: 'test', kite: { closeGraceMs: 200 }, ...options }), (app) => app.kiteReverseProxy.kiteURL())
}

/** A tunnel proxy over TLS, registered with Kontrol as `tunnelproxy` (by Kontrol's own user, as upstream's RegisterToTunnel looks for it). */
export async function startTunnelProxy(t: Teardown, s: ProxyStart, options: TunnelProxyOptions = {}): Promise<StartedProxy> {
  return startProxyApp(t, s, (app) => app.register(kiteTunnelProxy, { region: 'test', environment: 'test', kite: { closeGraceMs: 200 }, ...options }), (app) => app.kiteTunnelProxy.kiteURL())
}

async function startProxyApp(t: Teardown, s: ProxyStart, plugin: (app: FastifyInstance) => PromiseLike<unknown>, url: (app: FastifyInstance) => string): Promise<StartedProxy> {
  const app = Fastify({ logger: quiet, https: { key: certs.key, cert: certs.cert } })
  t.teardown(() => app.close())
  await plugin(app)
  s.setup?.(app)
  await app.register(kiteAuth, { kiteKey: s.kiteKey })
  await app.register(kontrolRegister, { kontrolURL: s.kontrolURL, kiteKey: s.kiteKey, backoff: { initialMs: 50, maxMs: 300 }, url: () => url(app) })
  const base = await app.listen({ port: s.port ?? 0, host: '127.0.0.1' })
  await app.kontrolRegister.ready
  return { app, base }
}

/** Kontrol's answer to getKites (what `kite query` prints), asked with `kiteKey`. */
export async function findKites(t: Teardown, kontrolURL: string, kiteKey: string, query: Record<string, string>): Promise<GetKitesResult['kites']> {
  const client = await connectClient(t, kontrolURL, { auth: { type: 'kiteKey', key: kiteKey } })
  const result = (await client.tell('getKites', { query })) as GetKitesResult
  await client.close()
  return result.kites
}

/** Opens a WebSocket and resolves with the open socket, or rejects with the handshake error. */
export function dial(url: string, options?: WebSocket.ClientOptions): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options)
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

/** Resolves with the code and reason of a WebSocket's close. */
export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
}

/**
 * KiteClient over SockJS WebSocket, XHR polling and raw WebSocket at a kite's
 * public URL (the fixture kite of proxied-kite.mjs): a plain call, an
 * authenticated one (the token is for user bob), and callbacks.
 */
export async function callEveryTransport(t: Tap.Test, url: string, token: string, through: string): Promise<void> {
  for (const transport of ['sockjs', 'xhr-polling', 'websocket'] as const) {
    const client = await connectClient(t, url, { transport, auth: { type: 'token', key: token }, timeout: 10000 })
    t.equal(await client.tell('square', 4), 16, `KiteClient ${transport} through ${through}: square(4)`)
    t.equal(await client.tell('secret'), 'hello bob', `KiteClient ${transport} through ${through}: an authenticated method sees the token's user`)
    const seen: number[] = []
    t.equal(await client.tell('count', 3, (i: number) => seen.push(i)), 'done')
    t.same(seen, [1, 2, 3], `KiteClient ${transport}: callbacks cross ${through}`)
    await client.close()
  }
}

/** One way kite.js reaches a kite: its transport, the URL and the SockJS prefix it is given. */
export interface KitejsKind {
  name: string
  transport: 'ws' | 'sockjs-ws' | 'sockjs-xhr'
  url: string
  prefix?: string
}

/** kite.js 1.0.13 at a kite's public URL, each way in `kinds`: a plain call and an authenticated one (the token is for bob). */
export async function kitejsCalls(t: Tap.Test, kinds: KitejsKind[], token: string, through: string): Promise<void> {
  for (const kind of kinds) {
    const kite = kitejs.connectKite(kind.url, { transport: kind.transport, prefix: kind.prefix, auth: { type: 'token', key: token } })
    t.equal(await kite.tell('square', [5]), 25, `kite.js ${kind.name} through ${through} over TLS`)
    t.equal(await kite.tell('secret', []), 'hello bob', `kite.js ${kind.name} through ${through}: authenticated call`)
    await kitejs.closeKite(kite)
  }
}

/** A kite in this process that listens on no port, behind the tunnel proxy: `bye` closes the caller's connection with 4001; two failed authentications close a connection (1008). */
export async function startPrivateKite(t: Tap.Test, kontrolURL: string, kiteKey: string): Promise<{ app: FastifyInstance; id: string; url: string }> {
  const app = Fastify({ logger: quiet })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'closer', version: '1.0.0', environment: 'test', closeGraceMs: 200, maxAuthFailures: 2 })
  await app.register(kiteAuth, { kiteKey })
  await app.register(kontrolRegister, { kontrolURL, kiteKey, backoff: { initialMs: 50, maxMs: 300 }, proxy: { type: 'tunnel' } })
  app.kite
    .handle('bye', (req) => {
      setImmediate(() => req.connection.close(4001, 'bye from the kite'))
      return 'bye'
    })
    .disableAuthentication()
  app.kite.handle('secret', (req) => `hello ${req.username}`)
  await app.ready()
  const result = await app.kontrolRegister.ready
  return { app, id: app.kite.identity.id, url: result.url }
}
