import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { execFile, execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { kontrol } from '../../plugins/kontrol/index.js'
import { kontrolRegister } from '../../plugins/kontrol-register/index.js'
import { KiteClient } from '../../lib/client/client.js'

// A private CA and a server certificate for 127.0.0.1, made with openssl for this run.
const dir = t.testdir({})
process.env.KITE_HOME = join(dir, 'home')
const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=fastify-kite test CA')
ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
writeFileSync(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext')
const ca = readFileSync(join(dir, 'ca.pem'), 'utf8')
const https = { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) }

async function httpsKite(t: Tap.Test): Promise<{ app: FastifyInstance; base: string }> {
  const app = Fastify({ logger: false, https })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0', closeGraceMs: 100 })
  app.kite.handle('square', (req) => (req.args[0] as number) ** 2).disableAuthentication()
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, base }
}

for (const transport of ['sockjs', 'websocket', 'xhr-polling'] as const) {
  t.test(`KiteClient over https with tls.ca, ${transport}`, async (t) => {
    const { base } = await httpsKite(t)
    t.match(base, /^https:/)
    const plain = new KiteClient(`${base}/kite`, { transport, connectTimeout: 5000 })
    t.teardown(() => plain.close())
    await t.rejects(plain.connect(), /self-signed|unable to verify|certificate/i, 'without the CA: refused')
    const c = new KiteClient(`${base}/kite`, { transport, tls: { ca } })
    t.teardown(() => c.close())
    await c.connect()
    t.equal(await c.tell('square', 7), 49, 'with tls.ca: connected and called')
    const insecure = new KiteClient(`${base}/kite`, { transport, tls: { rejectUnauthorized: false } })
    t.teardown(() => insecure.close())
    await insecure.connect()
    t.equal(await insecure.tell('square', 3), 9, 'rejectUnauthorized: false is passed on too')
  })
}

t.test('Kontrol over https; a kite over https registers an https:// URL (WebSocket and HTTP links); getKites clients carry the TLS settings', async (t) => {
  const k = Fastify({ logger: false, https })
  t.teardown(() => k.close())
  await k.register(kiteServer, { name: 'kontrol', version: '0.0.1', username: 'operator', closeGraceMs: 100 })
  await k.register(kiteAuth, { kiteKey: false })
  await k.register(kontrol, { storage: 'memory' })
  await k.listen({ port: 0, host: '127.0.0.1' })
  t.match(k.kontrol.url, /^https:\/\/127\.0\.0\.1:\d+\/kite$/, "Kontrol's own URL is https")
  const kiteKey = k.kontrol.service.issueKiteKey('alice')

  for (const http of [false, true]) {
    const app = Fastify({ logger: false, https })
    t.teardown(() => app.close())
    await app.register(kiteServer, { name: http ? 'math-http' : 'math', version: '1.0.0', closeGraceMs: 100 })
    await app.register(kiteAuth, { kiteKey })
    await app.register(kontrolRegister, { kiteKey, kontrolURL: k.kontrol.url, tls: { ca }, http })
    app.kite.handle('square', (req) => (req.args[0] as number) ** 2)
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    const result = await app.kontrolRegister.ready
    t.equal(app.kontrolRegister.url, `${base}/kite`)
    t.match(result.url ?? app.kontrolRegister.url, /^https:\/\//, `registered an https URL (${http ? 'HTTP' : 'WebSocket'} link)`)
  }
  const [math] = await k.kontrol.storage.query({ name: 'math' }, 0)
  t.match(math!.url, /^https:\/\/127\.0\.0\.1:\d+\/kite$/)

  const caller = Fastify({ logger: false })
  t.teardown(() => caller.close())
  await caller.register(kiteServer, { name: 'caller', version: '1.0.0', closeGraceMs: 100 })
  await caller.register(kontrolRegister, { kiteKey, kontrolURL: k.kontrol.url, tls: { ca } })
  await caller.listen({ port: 0, host: '127.0.0.1' })
  await caller.kontrolRegister.ready
  const [client] = await caller.kite.getKites({ username: 'alice', name: 'math' })
  t.teardown(() => client!.close())
  await client!.connect()
  t.equal(await client!.tell('square', 5), 25, 'a getKites client reaches the https kite with its token')
})

t.test("registerURL: 'public' registers this machine's non-internal address", async (t) => {
  const k = Fastify({ logger: false })
  t.teardown(() => k.close())
  await k.register(kiteServer, { name: 'kontrol', version: '0.0.1', username: 'operator', closeGraceMs: 100 })
  await k.register(kiteAuth, { kiteKey: false })
  await k.register(kontrol, { storage: 'memory' })
  await k.listen({ port: 0, host: '127.0.0.1' })
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0', closeGraceMs: 100 })
  await app.register(kontrolRegister, { kiteKey: k.kontrol.service.issueKiteKey('alice'), kontrolURL: k.kontrol.url, registerURL: 'public' })
  await app.listen({ port: 0, host: '0.0.0.0' })
  await app.kontrolRegister.ready
  const external = Object.values(networkInterfaces()).flat().find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)
  const port = (app.server.address() as { port: number }).port
  t.equal(app.kontrolRegister.url, `http://${external?.address ?? '127.0.0.1'}:${port}/kite`)
  t.not(new URL(app.kontrolRegister.url).hostname, '0.0.0.0')
})

t.test('kite --ca FILE: the CLI trusts that CA', async (t) => {
  const { base } = await httpsKite(t)
  const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))
  const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => execFile(process.execPath, [cli, ...args], { env: { ...process.env, KITE_HOME: join(dir, 'cli-home') }, timeout: 30000 }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), stdout, stderr })))
  const without = await run(['tell', `${base}/kite`, 'square', '6'])
  t.equal(without.code, 1)
  t.match(without.stderr, /certificate|self-signed|unable to verify/i)
  const withCa = await run(['--ca', join(dir, 'ca.pem'), 'tell', `${base}/kite`, 'square', '6'])
  t.equal(withCa.code, 0, withCa.stderr)
  t.equal(withCa.stdout.trim(), '36')
})

