import { parentPort } from 'node:worker_threads'
import Fastify, { type FastifyInstance } from 'fastify'
import { kiteServer } from '../plugins/kite-server/index.js'
import { kiteAuth } from '../plugins/kite-auth/index.js'
import { kontrol } from '../plugins/kontrol/index.js'
import { kontrolRegister } from '../plugins/kontrol-register/index.js'

/**
 * The pool benchmark's servers, in a worker thread: a Kontrol (memory
 * storage) and 3 kites `math` registered with it, all on this thread (so a
 * pool over 3 kites and a client of one kite meet the same server capacity).
 */
const k = Fastify({ logger: false })
await k.register(kiteServer, { name: 'kontrol', version: '0.0.1', username: 'bench-kontrol' })
await k.register(kiteAuth, { kiteKey: false })
await k.register(kontrol, { storage: 'memory', heartbeatInterval: 30, heartbeatGrace: 30 })
await k.listen({ port: 0, host: '127.0.0.1' })
const kontrolURL = k.kontrol.url

const kites: FastifyInstance[] = []
for (let i = 0; i < 3; i++) {
  const key = k.kontrol.service.issueKiteKey('bench')
  const app = Fastify({ logger: false })
  await app.register(kiteServer, { name: 'math', version: '1.0.0', environment: 'bench' })
  await app.register(kiteAuth, { kiteKey: key })
  await app.register(kontrolRegister, { kontrolURL, kiteKey: key })
  app.kite.handle('square', (req) => (req.args[0] as number) ** 2).disableAuthentication()
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.kontrolRegister.ready
  kites.push(app)
}

parentPort!.postMessage({ kontrolURL, kiteKey: k.kontrol.service.issueKiteKey('caller') })
parentPort!.on('message', async (m) => {
  if (m === 'stop') {
    for (const app of kites) await app.close()
    await k.close()
    process.exit(0)
  }
})
