import t from 'tap'
import { spawn, execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { KiteClient } from '../lib/client/client.js'

// The README's code blocks marked `<!-- runnable: NAME -->` are run as they are written; the
// only change is the port 3636 of the examples, replaced by a free one. Snippets are written
// inside the repository (tap's testdir), so `import … from 'fastify-kite'` resolves to this
// package (its own name, through package.json "exports", i.e. dist/).
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

function script(dir: string, name: string, code: string, port: number): string {
  const js = ts.transpileModule(code.replaceAll('3636', String(port)), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText
  const file = join(dir, `${name}.mjs`)
  writeFileSync(file, js)
  return file
}

function run(file: string, cwd = root, args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => execFile(process.execPath, [...args, file].filter((a) => a !== ''), { cwd, timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), stdout, stderr })))
}

t.test('the marked README snippets exist', async (t) => {
  t.same([...blocks.keys()].sort(), ['client', 'node-e', 'server'])
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
  const server = spawn(process.execPath, [join(root, 'dist/example-app/server.js')], { cwd: root, env: { ...process.env, PORT: String(port), KONTROL_PORT: '0', HOST: '127.0.0.1', KITE_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => server.kill('SIGKILL'))
  await new Promise<void>((resolve, reject) => {
    let out = ''
    server.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('math kite at')) resolve()
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
})
