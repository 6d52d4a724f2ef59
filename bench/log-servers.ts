import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parentPort } from 'node:worker_threads'
import Fastify, { type FastifyInstance } from 'fastify'
import pino from 'pino'
import { kiteServer } from '../plugins/kite-server/index.js'

/**
 * The call-log benchmark's kites, in a worker thread, as a production app
 * runs them: Fastify's pino logger with `logger.file`, which (like Fastify's
 * default stdout logger) is pino's asynchronous destination (sonic-boom,
 * writes on libuv's thread pool). Two at level `warn` (no call line; the
 * second an A/A control), one at `info` writing to /dev/null (the line is
 * built and written), one at `info` writing to a file, and one at `info`
 * with a synchronous destination (`pino.destination({ sync: true })`).
 */
const dir = mkdtempSync(join(tmpdir(), 'kite-bench-log-'))
const cases: Array<{ name: string; level: string; file: string; sync?: boolean }> = [
  { name: 'warn', level: 'warn', file: '/dev/null' },
  // The same as the first: the spread between two identical kites (noise of this machine).
  { name: 'warn, 2nd kite (A/A)', level: 'warn', file: '/dev/null' },
  { name: 'info, /dev/null', level: 'info', file: '/dev/null' },
  { name: 'info, a file', level: 'info', file: join(dir, 'kite.log') },
  { name: 'info, /dev/null, sync', level: 'info', file: '/dev/null', sync: true },
]
const apps: FastifyInstance[] = []
const urls: Record<string, string> = {}
for (const c of cases) {
  const app = Fastify({ logger: c.sync === true ? { level: c.level, stream: pino.destination({ dest: c.file, sync: true }) } : { level: c.level, file: c.file } })
  await app.register(kiteServer, { name: 'math', version: '1.0.0' })
  app.kite.handle('square', (req) => (req.args[0] as number) ** 2).disableAuthentication()
  urls[c.name] = `${await app.listen({ port: 0, host: '127.0.0.1' })}/kite`
  apps.push(app)
}
parentPort!.postMessage(urls)
parentPort!.on('message', async (m) => {
  if (m === 'stop') {
    for (const app of apps) await app.close()
    rmSync(dir, { recursive: true, force: true })
    process.exit(0)
  }
})
