import t from 'tap'
import { spawn, execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { KiteClient } from '../lib/client/client.js'
import { KITE_CLI } from './helpers/child.js'

// The README's code blocks marked `<!-- runnable: NAME -->` are run as they are written. The only
// changes: example ports (3636, 4000, 8443) become free ones, and a fragment that assumes
// imports or an `app` gets them put before it (PRELUDES), and checks of what it did after it
// (EPILOGUES), as a reader pastes a fragment into an app. Snippets are written inside the
// repository (tap's testdir), so `import … from 'fastify-kite'` resolves to this package (its
// own name, through package.json "exports", i.e. dist/).
//
// Blocks left unmarked, and why:
// - `npm install && npm start` / `npm test`, `npm install fastify-kite …`: installs from the
//   registry (network) or runs the whole suite.
// - The tour of `npm start` (curl, `npx kite …` lines) and `KONTROL_STORAGE=… npm start`: shell
//   sessions against a long-running app; each command is covered by the CLI and example-app tests.
// - The `"overrides"` JSON, the log line, the benchmark tables and the trace printout: not code.
// - `methods.ts` / `client.ts` (typed clients): two files shown in one block; test/types covers it.
// - The curl to the HTTP mirror: the same call as the tour's; test/plugins/method-schemas covers it.
// - Migrating from Go Kontrol: needs Go Kontrol, its key files and its database.
// - The reverse and tunnel proxy examples: public host names (proxy.example.com,
//   tunnel.example.com) and a private address (10.0.0.5) that do not exist here;
//   test/plugins/reverse-proxy and tunnel-proxy run the same setups on 127.0.0.1.
// - The trace across two kites: test/example-app.test.ts checks that the README shows
//   example-app/trace-two-kites.mjs as it is, and runs it.
// - The browser page (HTML): test/browser runs the bundle in Chromium.
const root = fileURLToPath(new URL('..', import.meta.url))
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const blocks = new Map<string, string>()
for (const m of readme.matchAll(/<!-- runnable: ([\w-]+)[^>]*-->\n```\w*\n([\s\S]*?)\n```/g)) blocks.set(m[1]!, m[2]!)

t.setTimeout(180_000)

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as { port: number }).port
  await new Promise((r) => srv.close(r))
  return port
}

function script(dir: string, name: string, code: string, port: number, ports: Record<string, number> = {}): string {
  let source = code.replaceAll('3636', String(port))
  for (const [from, to] of Object.entries(ports)) source = source.replaceAll(from, String(to))
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText
  const file = join(dir, `${name}.mjs`)
  writeFileSync(file, js)
  return file
}

function run(file: string, cwd = root, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => execFile(process.execPath, [...args, file].filter((a) => a !== ''), { cwd, timeout: 90_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), stdout, stderr })))
}

/** Runs the blocks `names` (one after another, in one module) between a prelude and an epilogue. */
async function runBlocks(t: Tap.Test, names: string[], o: { prelude?: string; epilogue?: string; ports?: Record<string, number>; env?: Record<string, string>; dir?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = o.dir ?? t.testdir({})
  const code = [o.prelude ?? '', ...names.map((n) => blocks.get(n)!), o.epilogue ?? ''].join('\n')
  const r = await run(script(dir, names.join('+'), code, await freePort(), o.ports), dir, [], { KITE_HOME: dir, ...o.env })
  t.equal(r.code, 0, `${names.join(' + ')}: exits 0 ${r.stderr}`)
  return r
}

t.test('the marked README snippets exist', async (t) => {
  t.same([...blocks.keys()].sort(), ['client', 'kite-auth', 'kontrol', 'kontrol-register', 'metrics', 'node-e', 'pool', 'pool-node-e', 'schemas', 'server', 'swagger', 'testing', 'tracing'])
})

t.test('README: the server snippet serves, the Node client snippet and the node -e snippet call it', async (t) => {
  const dir = t.testdir({})
  const port = await freePort()
  const server = spawn(process.execPath, [script(dir, 'server', blocks.get('server')!, port)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => server.kill('SIGKILL'))
  let serverErr = ''
  server.stderr.on('data', (d: Buffer) => (serverErr += d.toString()))
  // Wait until it answers kite.ping.
  const started = Date.now()
  for (;;) {
    const probe = new KiteClient(`http://127.0.0.1:${port}/kite`, { connectTimeout: 2000 })
    try {
      await probe.connect()
      await probe.tell('kite.ping')
      break
    } catch {
      if (Date.now() - started > 60_000 || server.exitCode !== null) throw new Error(`the server snippet did not start: ${serverErr}`)
      await new Promise((r) => setTimeout(r, 200))
    } finally {
      await probe.close()
    }
  }
  t.equal(((await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { ok: unknown }).ok, true, 'its HTTP route answers')

  const client = await run(script(dir, 'client', blocks.get('client')!, port))
  t.equal(client.code, 0, `client snippet: ${client.stderr}`)

})

t.test('README: the node -e snippet calls the example app of npm start', async (t) => {
  const port = await freePort()
  const home = t.testdir({})
  const env = { ...process.env, USER: 'readme', KITE_USERNAME: 'readme', KITE_HOME: home, KITE_KONTROL_URL: '' }
  const server = spawn(process.execPath, [join(root, 'dist/example-app/server.js')], { cwd: root, env: { ...env, PORT: String(port), KONTROL_PORT: '0', HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => server.kill('SIGKILL'))
  const kontrolPort = await new Promise<string>((resolve, reject) => {
    let out = ''
    server.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /math kite at .* registered with kontrol at http:\/\/127\.0\.0\.1:(\d+)\/kite/.exec(out)
      if (m !== null) resolve(m[1]!)
    })
    server.once('exit', () => reject(new Error(`npm start's server exited: ${out}`)))
  })
  // The sh block: node --input-type=module -e "…" run from the repository folder.
  const m = /node --input-type=module -e "([\s\S]*)"$/.exec(blocks.get('node-e')!.trim())
  t.ok(m, 'the node -e block has its usual shape')
  const code = m![1]!.replaceAll('3636', String(port))
  const nodeE = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, ['--input-type=module', '-e', code], { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : 1, stdout, stderr })),
  )
  t.equal(nodeE.code, 0, nodeE.stderr)
  t.same(nodeE.stdout.trim().split('\n'), ['16', 'tick 3', 'tick 2', 'tick 1', 'done'])

  // The pool's sh block: node -e with kitePool (Kontrol's port 4000 is the embedded one's here), then `npx kite tell`.
  const [poolE, cli] = blocks.get('pool-node-e')!.trim().split(/\n(?=npx kite )/) as [string, string]
  const pm = /^node --input-type=module -e "([\s\S]*)"$/.exec(poolE)
  t.ok(pm, 'the pool block starts with node -e')
  const pooled = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, ['--input-type=module', '-e', pm![1]!.replaceAll('4000', kontrolPort)], { cwd: root, env, timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : 1, stdout, stderr })),
  )
  t.equal(pooled.code, 0, pooled.stderr)
  const [sixteen, stats] = pooled.stdout.trim().split('\n')
  t.equal(sixteen, '16')
  t.match(stats, /^\[ \[ 'http:\/\/127\.0\.0\.1:\d+\/kite', 'closed', 1 \] \]$/, 'stats: the one math kite, circuit closed, one call')
  const args = cli.replace(/^npx kite /, '').replaceAll('$USER', 'readme').split(/\s+/)
  const told = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [KITE_CLI, ...args], { cwd: root, env, timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : 1, stdout, stderr })),
  )
  t.equal(told.code, 0, told.stderr)
  t.equal(told.stdout.trim(), '16', `kite ${args.join(' ')}`)
})

t.test('README: the schemas snippet (typebox) runs; its square validates its argument', async (t) => {
  const r = await runBlocks(t, ['schemas'], {
    epilogue: `
console.log(await app.kite.inject('square', 3))
console.log(await app.kite.inject('square', 'x').catch((err) => err.type))
await app.close()`,
  })
  t.same(r.stdout.trim().split('\n'), ['9', 'argumentError'])
})

t.test('README: the swagger snippet documents the security of mirrored methods', async (t) => {
  const r = await runBlocks(t, ['swagger'], {
    prelude: `import Fastify from 'fastify'
import swagger from '@fastify/swagger'
import { kiteServer } from 'fastify-kite'
const app = Fastify()`,
    epilogue: `
app.kite.handle('secret', () => 'hi')
await app.ready()
console.log(JSON.stringify(app.swagger().paths['/kite/methods/secret'].post.security))
await app.close()`,
  })
  t.same(JSON.parse(r.stdout.trim()), [{ kiteToken: [] }, { kiteKey: [] }])
})

t.test('README: the kiteAuth snippet trusts the Kontrol key given; secret answers a kite.key it signed', async (t) => {
  const r = await runBlocks(t, ['kite-auth'], {
    prelude: `import Fastify from 'fastify'
import { kiteServer, kiteAuth } from 'fastify-kite'
import { startTestKontrol } from 'fastify-kite/testing'
const testKontrol = await startTestKontrol()
const kontrolPublicKeyPem = testKontrol.keyPair.publicKey
const app = Fastify()`,
    epilogue: `
console.log(await app.kite.inject({ method: 'secret', auth: { type: 'kiteKey', key: testKontrol.kiteKey('bob') } }))
console.log(await app.kite.inject('secret').catch((err) => err.type))
await app.close()
await testKontrol.close()`,
  })
  t.same(r.stdout.trim().split('\n'), ['hello bob', 'authenticationError'])
})

t.test('README: the Kontrol snippet serves a Kontrol on PostgreSQL', async (t) => {
  const port = await freePort()
  const r = await runBlocks(t, ['kontrol'], {
    prelude: `import Fastify from 'fastify'
import { kiteServer, kiteAuth, kontrol } from 'fastify-kite'`,
    ports: { 4000: port },
    epilogue: `
console.log(app.kontrol.url)
await app.close()`,
  })
  t.equal(r.stdout.trim(), `http://127.0.0.1:${port}/kite`)
})

t.test('README: the kontrolRegister and pool snippets register, find alice\'s fs kite and call it', async (t) => {
  const { startTestKontrol } = await import('../testing.js')
  const Fastify = (await import('fastify')).default
  const { kiteServer, kiteAuth, kontrolRegister } = await import('../index.js')
  const kontrol = await startTestKontrol()
  t.teardown(() => kontrol.close())
  const fs = Fastify()
  t.teardown(() => fs.close())
  const key = kontrol.kiteKey('alice')
  await fs.register(kiteServer, { name: 'fs', version: '1.0.0', environment: 'prod' })
  await fs.register(kiteAuth, { kiteKey: key })
  await fs.register(kontrolRegister, { kontrolURL: kontrol.url, kiteKey: key })
  const seen: string[] = []
  fs.kite.handle('readFile', (req) => {
    seen.push(`${req.username} readFile ${String(req.args[0])}`)
    return 'host'
  })
  fs.kite.handle('stat', (req) => {
    seen.push(`${req.username} stat ${String(req.args[0])}`)
    return { size: 1 }
  })
  await fs.listen({ port: 0, host: '127.0.0.1' })
  await fs.kontrolRegister.ready
  const home = t.testdir({})
  await kontrol.writeKiteKey('bob', home)
  await runBlocks(t, ['kontrol-register', 'pool'], {
    prelude: `import Fastify from 'fastify'
import { kiteServer, kiteAuth, kontrolRegister } from 'fastify-kite'
const app = Fastify()`,
    dir: home,
    epilogue: `
await other.close()
await app.close()`,
  })
  t.same(seen, ['bob readFile /etc/hostname', 'bob readFile /etc/hostname', 'bob readFile /etc/hostname', 'bob stat /tmp'], 'the calls reached the fs kite, made as bob (the kite.key in KITE_HOME)')
})

t.test('README: the metrics snippet serves /metrics', async (t) => {
  const r = await runBlocks(t, ['metrics'], {
    prelude: `import Fastify from 'fastify'
import { kiteServer } from 'fastify-kite'
const app = Fastify()`,
    epilogue: `
app.kite.handle('square', (req) => req.args[0] ** 2).disableAuthentication()
await app.kite.inject('square', 2)
const res = await app.inject('/metrics')
console.log(res.statusCode, /^kite_calls_total\\{method="square"\\} 1$/m.test(res.body))
await app.close()`,
  })
  t.equal(r.stdout.trim(), '200 true')
})

t.test('README: the tracing snippet installs the observer', async (t) => {
  const r = await runBlocks(t, ['tracing'], {
    prelude: `import Fastify from 'fastify'
import { kiteServer, KiteClient } from 'fastify-kite'
const app = Fastify()
await app.register(kiteServer, { name: 'math', version: '1.0.0' })
const url = 'http://127.0.0.1:1/kite'`,
    epilogue: `
await app.ready()
console.log(app.kite.observer !== null, client.connected)
await app.close()`,
  })
  t.equal(r.stdout.trim(), 'true false')
})

t.test('README: the node:test example passes', async (t) => {
  const r = await runBlocks(t, ['testing'])
  t.match(r.stdout, /^# pass 1$/m)
  t.match(r.stdout, /^# fail 0$/m)
})
