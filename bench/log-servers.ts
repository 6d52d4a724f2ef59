import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parentPort } from 'node:worker_threads'
import Fastify, { type FastifyInstance } from 'fastify'
import { kiteServer } from '../plugins/kite-server/index.js'

/**
 * The call-log benchmark's kites, in a worker thread, as a production app
 * runs them (Fastify's pino logger, a synchronous destination like Fastify's
 * `logger.file`): two at level `warn` (no call line; the second an A/A control), one at `info` writing to
 * /dev/null (the line is built and written), one at `info` writing to a file.
 */
const dir = mkdtempSync(join(tmpdir(), 'kite-bench-log-'))
const cases = [
  { name: 'warn', level: 'warn', file: '/dev/null' },
  // The same as the first: the spread between two identical kites (noise of this machine).
  { name: 'warn, 2nd kite (A/A)', level: 'warn', file: '/dev/null' },
  { name: 'info, /dev/null', level: 'info', file: '/dev/null' },
  { name: 'info, a file', level: 'info', file: join(dir, 'kite.log') },
]
const apps: FastifyInstance[] = []
const urls: Record<string, string> = {}
for (const c of cases) {
  const app = Fastify({ logger: { level: c.level, file: c.file } })
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
