import { availableParallelism } from 'node:os'
import { pathToFileURL } from 'node:url'
import { join, resolve } from 'node:path'
import Fastify from 'fastify'

/**
 * One Kontrol in its own process for bench/kontrol-signing.ts: memory
 * storage filled with `BENCH_KITES` kites (user<u>/env<e>/kite<n>), then it
 * sends its URL and kite.keys over IPC and serves until killed.
 * BENCH_SIGNING_THREADS sets `signingThreads` (unset: the default);
 * BENCH_KONTROL_DIST loads the plugins from another build (e.g. main's, to
 * measure the code before this change; that build knows no signingThreads).
 */
const dist = resolve(process.env.BENCH_KONTROL_DIST ?? join(import.meta.dirname, '..'))
const load = async <T>(path: string): Promise<T> => (await import(pathToFileURL(join(dist, path)).href)) as T
const { kiteServer } = await load<typeof import('../plugins/kite-server/index.js')>('plugins/kite-server/index.js')
const { kiteAuth } = await load<typeof import('../plugins/kite-auth/index.js')>('plugins/kite-auth/index.js')
const { kontrol } = await load<typeof import('../plugins/kontrol/index.js')>('plugins/kontrol/index.js')

const kites = Number(process.env.BENCH_KITES ?? 10_000)
const requesters = Number(process.env.BENCH_REQUESTERS ?? 1)
const threads = process.env.BENCH_SIGNING_THREADS

const app = Fastify({ logger: false, return503OnClosing: false })
await app.register(kiteServer, { name: 'kontrol', version: '0.0.1', username: 'kontrol-owner', closeGraceMs: 200 })
await app.register(kiteAuth, { kiteKey: false })
// Hour-long heartbeats: the rows filled below stay fresh (and not overdue) for the whole run.
await app.register(kontrol, { storage: 'memory', heartbeatInterval: 3600, heartbeatGrace: 3600, ...(threads === undefined ? {} : { signingThreads: Number(threads) }) })
await app.listen({ port: 0, host: '127.0.0.1' })
const keyId = app.kontrol.keys.current.id
const per = Math.ceil(Math.cbrt(kites))
for (let i = 0; i < kites; i++) {
  const u = Math.floor(i / (per * per))
  const e = Math.floor(i / per) % per
  const n = i % per
  await app.kontrol.storage.upsert(
    { username: `user${u}`, environment: `env${e}`, name: `kite${n}`, version: '1.0.0', region: 'eu', hostname: 'bench', id: `kite-${i}` },
    { url: `ws://127.0.0.1:${4000 + (i % 1000)}/kite`, keyId },
  )
}
const keys: Record<string, string> = { pinger: app.kontrol.service.issueKiteKey('pinger') }
for (let r = 0; r < requesters; r++) keys[`finder${r}`] = app.kontrol.service.issueKiteKey(`finder${r}`)
process.send!({ url: app.kontrol.url, keys, per, cpus: availableParallelism() })
process.on('disconnect', () => void app.close().then(() => process.exit(0)))
