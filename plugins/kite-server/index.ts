import websocket from '@fastify/websocket'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyTypeProvider } from 'fastify'
import fp from 'fastify-plugin'
import { Kite } from './kite.js'
import { resolveServerOptions, type KiteServerOptions } from './options.js'
import { kiteTransports } from './transports/routes.js'
import { guardHandshakes } from './handshake.js'
import { appSerializerCompiler, appValidatorCompiler, httpMirror } from './http-mirror.js'
import { pluginConfig } from '../../lib/config.js'

declare module 'fastify' {
  interface FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider extends FastifyTypeProvider> {
    /** This app's kite: its methods, handlers, authenticators and connected peers (typed by the app's type provider). */
    kite: Kite<TypeProvider>
  }
}

const REFUSED_UPGRADE = 'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'

/**
 * Once closing, @fastify/websocket has taken its upgrade listener off the
 * server, and Node leaves an upgrade request to the listeners that remain
 * (ours, guarding handshakes): a peer that redials while the app closes (Go's
 * kite client does so at once on close 1001) would wait for an answer that
 * never comes, and hold app.close() with it. Such upgrades get a 503 at once;
 * the peer backs off and dials again (another instance, or this one restarted).
 */
function refuseUpgradesWhileClosing(app: FastifyInstance): () => void {
  let closing = false
  const refuse = (_req: IncomingMessage, socket: Duplex): void => {
    if (!closing) return
    socket.on('error', () => socket.destroy())
    socket.end(REFUSED_UPGRADE)
  }
  app.server.on('upgrade', refuse)
  app.addHook('onClose', async () => void app.server.off('upgrade', refuse))
  return () => {
    closing = true
  }
}

async function kiteServerPlugin(app: FastifyInstance, options: KiteServerOptions): Promise<void> {
  const { config, env, kiteKeyError } = await pluginConfig()
  // Identity and handshake timeout: options > KITE_* > kite.key > defaults (lib/config).
  const resolved = resolveServerOptions(options === null || typeof options !== 'object' ? options : {
    ...options,
    username: options.username ?? config.username,
    environment: options.environment ?? config.environment,
    region: options.region ?? config.region,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? config.handshakeTimeoutMs,
  })
  // The kite's own child logger; KITE_LOG_LEVEL sets its level (and SIGUSR2 toggles debug, see logging).
  const log = app.log.child({ plugin: 'kite-server', kite: resolved.identity.name }, env.logLevel !== undefined ? { level: env.logLevel } : {})
  if (kiteKeyError !== null) log.warn({ err: kiteKeyError.message }, 'kite.key ignored for the kite identity')
  const kite = new Kite(resolved, log)
  app.decorate('kite', kite)

  // SockJS escapes the dnode JSON once more inside its frames; leave room for that.
  const frameLimit = resolved.limits.maxMessageBytes * 2 + 1024
  const startRefusingUpgrades = refuseUpgradesWhileClosing(app)
  if (!app.hasDecorator('websocketServer')) {
    await app.register(websocket, {
      // JSON.parse checks what it reads; a separate UTF-8 pass over every frame buys nothing.
      options: { maxPayload: frameLimit, skipUTF8Validation: true },
      // Our own preClose: drain calls before sockets close (the default closes them at once).
      preClose: async function () {
        startRefusingUpgrades()
        await kite.shutdown()
        const wss = app.websocketServer
        for (const client of wss.clients) client.close(1001, 'server shutting down')
        // A peer that never answers the close handshake must not hold app.close() for ws's 30 s.
        const stragglers = setTimeout(() => {
          for (const client of wss.clients) client.terminate()
        }, 1000)
        stragglers.unref()
        await new Promise<void>((resolve) => wss.close(() => resolve()))
        clearTimeout(stragglers)
      },
    })
  } else {
    app.addHook('preClose', async () => {
      startRefusingUpgrades()
      await kite.shutdown()
    })
  }
  await app.register(kiteTransports, { kite, bodyLimit: frameLimit })
  if (resolved.handshakeTimeoutMs > 0) {
    const unguard = guardHandshakes(app.server, resolved.handshakeTimeoutMs, (remote) => kite.warnings.warn(kite.log, remote, { timeoutMs: resolved.handshakeTimeoutMs }, 'dropped a connection that sent no request in time'))
    app.addHook('onClose', async () => unguard())
  }
  kite.startIdleSweep()
  kite.mirror = httpMirror(app, kite)
  // Method schemas are compiled by the app's own validator compiler (its Ajv
  // options, formats, plugins, shared schemas), once it is final.
  app.addHook('onReady', async () => {
    kite.methods.useValidatorCompiler(appValidatorCompiler(app), appSerializerCompiler(app))
  })
  // SIGUSR2 toggles debug logging of this kite (Go's SetupSignalHandler), connections included.
  const configuredLevel = log.level
  const toggleDebug = (): void => {
    const next = log.level === 'debug' ? (configuredLevel === 'debug' ? 'info' : configuredLevel) : 'debug'
    log.level = next
    for (const conn of kite.connections) conn.log.level = next
    log.info({ logLevel: next }, 'SIGUSR2: log level changed')
  }
  process.on('SIGUSR2', toggleDebug)
  app.addHook('onClose', async () => void process.off('SIGUSR2', toggleDebug))
  app.log.debug({ kite: kite.toString(), prefix: resolved.prefix }, 'kite ready')
}

/**
 * Makes the Fastify app a kite: `app.kite.handle('square', (req) => …)`.
 * Serves SockJS under `prefix` (default `/kite`) and raw WebSocket on it.
 */
export const kiteServer = fp(kiteServerPlugin, { name: 'kite-server', fastify: '5.x' })
export default kiteServer
export { Kite } from './kite.js'
export type { KiteServerEvents, KiteDescription, MethodDescription } from './kite.js'
export type { KiteServerOptions } from './options.js'
