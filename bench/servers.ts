import { createWriteStream } from 'node:fs'
import { parentPort } from 'node:worker_threads'
import Fastify from 'fastify'
import { WebSocketServer } from 'ws'
import { createSign, generateKeyPairSync } from 'node:crypto'
import { kiteServer } from '../plugins/kite-server/index.js'
import { kiteAuth } from '../plugins/kite-auth/index.js'

/** A Kontrol key pair and a token for the kite `math`, signed as Go Kontrol signs them. */
function kontrolToken(): { publicKey: string; token: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  const now = Math.floor(Date.now() / 1000)
  const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url')
  const input = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss: 'bench', sub: 'bench-user', aud: '/unknown/unknown/math', iat: now - 300, nbf: now - 300, exp: now + 3600 })}`
  return { publicKey, token: `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}` }
}
const { publicKey, token } = kontrolToken()

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

// BENCH_LOG=info: the kite logs as a production app would (pino at info to /dev/null), one call line per call.
const app = process.env.BENCH_LOG === undefined ? Fastify({ logger: false }) : Fastify({ logger: { level: process.env.BENCH_LOG, stream: createWriteStream('/dev/null') } })
await app.register(kiteServer, { name: 'math', version: '1.0.0' })
app.kite.handle('square', (req) => (req.args[0] as number) ** 2).disableAuthentication()
await app.register(kiteAuth, { trustedKontrolKeys: [publicKey], kiteKey: false })
app.kite.handle('secureSquare', (req) => (req.args[0] as number) ** 2)
// square with an args schema of its shape, checked by the app's Ajv: the cost of validation.
app.kite.handle('schemaSquare', { schema: { args: [{ type: 'number' }] }, auth: false }, (req) => (req.args[0] as number) ** 2)
const kiteBase = await app.listen({ port: 0, host: '127.0.0.1' })

const barePort = (bare.address() as { port: number }).port
parentPort!.postMessage({ bareURL: `ws://127.0.0.1:${barePort}`, kiteURL: `${kiteBase}/kite`, token })
parentPort!.on('message', async (m) => {
  if (m === 'stop') {
    bare.close()
    await app.close()
    process.exit(0)
  }
})
