import { parentPort, workerData } from 'node:worker_threads'
import { createSign, generateKeyPairSync } from 'node:crypto'
import Fastify from 'fastify'
import { kiteReverseProxy } from '../plugins/reverse-proxy/index.js'
import { kiteAuth } from '../plugins/kite-auth/index.js'
import { KiteClient } from '../lib/client/client.js'

/**
 * The reverse proxy of the `npm run bench` proxy case, in its own thread (as
 * it would be its own process): the bench's `math` kite registers with it,
 * and the client calls through `/proxy/<id>`.
 */
const { kiteURL } = workerData as { kiteURL: string }
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url')
const input = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss: 'bench', sub: 'bench-user', iat: Math.floor(Date.now() / 1000) - 300, jti: 'bench', kontrolURL: 'http://127.0.0.1:1/kite', kontrolKey: publicKey.trim() })}`
const kiteKey = `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`

const app = Fastify({ logger: false })
await app.register(kiteReverseProxy, { publicHost: '127.0.0.1' })
await app.register(kiteAuth, { trustedKontrolKeys: [publicKey], kiteKey: false })
await app.listen({ port: 0, host: '127.0.0.1' })
// The kite's side of registration: a connection that lives as long as the bench.
const link = new KiteClient(app.kiteReverseProxy.kiteURL(), { auth: { type: 'kiteKey', key: kiteKey }, kite: { name: 'math', id: 'bench-math' } })
await link.connect()
const proxiedURL = (await link.tell('register', kiteURL)) as string
parentPort!.postMessage({ proxiedURL })
parentPort!.on('message', async (m) => {
  if (m === 'stop') {
    await link.close()
    await app.close()
    process.exit(0)
  }
})
