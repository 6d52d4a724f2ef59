import { parentPort } from 'node:worker_threads'
import Fastify from 'fastify'
import { WebSocketServer } from 'ws'
import { kiteServer } from '../plugins/kite-server/index.js'

/**
 * Runs in a worker thread so that servers and clients have a core each:
 * a bare JSON-over-WebSocket echo server (the baseline) and a kite `math`.
 */
const bare = new WebSocketServer({ host: '127.0.0.1', port: 0 })
bare.on('connection', (ws) => {
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString()) as { id: number; args: [number] }
    ws.send(JSON.stringify({ id: msg.id, error: null, result: msg.args[0] * msg.args[0] }))
  })
})
await new Promise((r) => bare.once('listening', r))

const app = Fastify({ logger: false })
await app.register(kiteServer, { name: 'math', version: '1.0.0' })
app.kite.handle('square', (req) => (req.args[0] as number) ** 2).disableAuthentication()
const kiteBase = await app.listen({ port: 0, host: '127.0.0.1' })

const barePort = (bare.address() as { port: number }).port
parentPort!.postMessage({ bareURL: `ws://127.0.0.1:${barePort}`, kiteURL: `${kiteBase}/kite` })
parentPort!.on('message', async (m) => {
  if (m === 'stop') {
    bare.close()
    await app.close()
    process.exit(0)
  }
})
