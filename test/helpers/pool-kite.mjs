// A kite in its own process for the pool tests (test/plugins/pool-processes.test.ts):
// registers with the Kontrol at KONTROL_URL using KITE_KEY, then prints
// "registered <id>". Its `work(callId)` prints "exec <id> <callId>" before
// answering, so the test knows which calls ran here even after SIGKILL
// (stdout to a pipe is synchronous on Linux).
import Fastify from 'fastify'
import { kiteServer, kiteAuth, kontrolRegister } from '../../dist/index.js'

const app = Fastify()
await app.register(kiteServer, { name: process.env.KITE_NAME ?? 'worker', version: '1.0.0', environment: 'test', closeGraceMs: 200 })
await app.register(kiteAuth, { kiteKey: process.env.KITE_KEY })
await app.register(kontrolRegister, { kontrolURL: process.env.KONTROL_URL, kiteKey: process.env.KITE_KEY, backoff: { initialMs: 50, maxMs: 300 } })
const id = app.kite.identity.id
const delay = Number(process.env.KITE_DELAY_MS ?? 0)
app.kite.handle('work', async (req) => {
  const [callId] = req.args
  process.stdout.write(`exec ${id} ${callId}\n`)
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
  return id
})
app.kite.handle('whoami', () => id).disableAuthentication()
await app.listen({ port: 0, host: '127.0.0.1' })
await app.kontrolRegister.ready
process.stdout.write(`registered ${id}\n`)
