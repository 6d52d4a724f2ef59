import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { buildMathApp } from '../example-app/app.js'
import { KiteClient } from '../lib/client/client.js'
import type { mathMethods } from '../example-app/methods.js'

t.test('the math app answers over HTTP and as a kite', async (t) => {
  const app = await buildMathApp({ fastify: { logger: false } })
  await t.rejects(Promise.resolve(app.kite.getKites({ name: 'x' })), /kontrol-register/, 'getKites without kontrol-register says so')
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.same(await (await fetch(`${base}/square/4`)).json(), { result: 16 })
  const client = new KiteClient(`${base}/kite`)
  t.teardown(() => client.close())
  await client.connect()
  t.equal(await client.tell('square', 4), 16)
  const ticks: number[] = []
  t.equal(await client.tell('countdown', 3, (i: number) => ticks.push(i)), 'done')
  t.same(ticks, [3, 2, 1])
  await t.rejects(client.tell('square', 'four'), { type: 'argumentError', message: 'args/0 must be number' })
  await t.rejects(client.tell('countdown', 3), { type: 'argumentError', message: 'args must NOT have fewer than 2 items' })
  await t.rejects(client.tell('countdown', 3000, () => {}), { type: 'argumentError', message: 'args/0 must be <= 1000' })
  const math = client.typed<typeof mathMethods>()
  const squared: number = await math.square(9)
  t.equal(squared, 81, 'the typed client')
  const res = await fetch(`${base}/kite/methods/square`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"args":[6]}' })
  t.same(await res.json(), { result: 36 }, 'square over the HTTP mirror')
  const metrics = await (await fetch(`${base}/metrics`)).text()
  t.match(metrics, /^kite_calls_total\{method="square"\} 4$/m, "metrics on: the four square calls over the kite connection counted")
  t.match(metrics, /^kite_call_errors_total\{method="square",type="argumentError"\} 1$/m)
  t.match(metrics, /^kite_call_errors_total\{method="countdown",type="argumentError"\} 2$/m)
})

t.test('npm start: an embedded Kontrol and the math kite registered with it, on PORT and HOST; stops on SIGTERM', async (t) => {
  const server = fileURLToPath(new URL('../dist/example-app/server.js', import.meta.url))
  const home = t.testdir()
  let kontrolBase = ''
  const child = spawn(process.execPath, [server], { env: { ...process.env, PORT: '0', KONTROL_PORT: '0', HOST: '127.0.0.1', KITE_HOME: home, KITE_USERNAME: 'demo' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => child.kill('SIGKILL'))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /math kite at (http:\/\/[^ ]+\/kite), registered with kontrol at (http:\/\/[^ ]+?)\/kite /.exec(out)
      if (m) resolve(m[1]!)
      if (m) kontrolBase = m[2]!
    })
    child.once('exit', () => reject(new Error(`exited early: ${out}`)))
  })
  const client = new KiteClient(url, { transport: 'xhr-polling' })
  await client.connect()
  t.equal(await client.tell('square', 7), 49)
  await client.close()
  const base = url.replace(/\/kite$/, '')
  t.equal((await fetch(`${base}/health/ready`)).status, 200, 'ready once registered')
  t.match(await (await fetch(`${kontrolBase}/metrics`)).text(), /^kite_kontrol_kites_registered 1$/m, 'Kontrol\'s metrics: the math kite registered')
  t.match(await (await fetch(`${base}/metrics`)).text(), /^kite_calls_total\{method="square"\} 1$/m, 'the math kite\'s metrics')
  t.match(await (await fetch(`${base}/systeminfo`)).json(), { state: 'RUNNING', uname: 'linux' })
  const { readKiteKey } = await import('../lib/kitekey.js')
  const key = await readKiteKey(`${home}/kite.key`)
  const authed = new KiteClient(url, { auth: { type: 'kiteKey', key } })
  await authed.connect()
  t.equal(await authed.tell('whoami'), 'demo', 'the kite.key written to KITE_HOME is accepted')
  await authed.close()
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exits 0 after a graceful close')
})

t.test('the README\'s trace across two kites runs and prints one trace', async (t) => {
  const { readFile } = await import('node:fs/promises')
  const { execFile } = await import('node:child_process')
  const script = fileURLToPath(new URL('../example-app/trace-two-kites.mjs', import.meta.url))
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  t.ok(readme.includes(await readFile(script, 'utf8')), 'the README shows the script as it is')
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [script], { timeout: 60000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)))
  })
  const lines = out.trim().split('\n')
  t.equal(lines[0], 'sumOfSquares(1, 2) = 5')
  const shape = lines.slice(1).map((l) => l.replace(/trace [0-9a-f]{32}/, 'trace T'))
  t.same(shape, [
    'kite sumOfSquares CLIENT trace T',
    '  kite sumOfSquares SERVER trace T (caller: caller)',
    '    kite square CLIENT trace T',
    '      kite square SERVER trace T (caller: front)',
    '    kite square CLIENT trace T',
    '      kite square SERVER trace T (caller: front)',
  ])
  t.equal(new Set(lines.slice(1).map((l) => /trace ([0-9a-f]{32})/.exec(l)![1])).size, 1, 'one trace id throughout')
})

t.test('npm start warns when the kept kite.key names a Kontrol other than the embedded one', async (t) => {
  const server = fileURLToPath(new URL('../dist/example-app/server.js', import.meta.url))
  const home = t.testdir()
  const { makeKontrol } = await import('./helpers/tokens.js')
  const { writeKiteKey } = await import('../lib/kitekey.js')
  await writeKiteKey(makeKontrol('demo').kiteKey('demo', { kontrolURL: 'http://127.0.0.1:4999/kite' }), `${home}/kite.key`)
  const child = spawn(process.execPath, [server], { env: { ...process.env, PORT: '0', KONTROL_PORT: '0', HOST: '127.0.0.1', KITE_HOME: home, KITE_USERNAME: 'demo' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => child.kill('SIGKILL'))
  const line = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const found = out.split('\n').find((l) => l.includes('the kept kite.key names the Kontrol'))
      if (found !== undefined) resolve(JSON.parse(found) as Record<string, unknown>)
    })
    child.once('exit', () => reject(new Error(`exited early: ${out}`)))
  })
  t.match(line, { level: 40, keyKontrol: 'http://127.0.0.1:4999/kite', embeddedKontrol: /^http:\/\/127\.0\.0\.1:\d+\/kite$/, msg: /Refresh it: npx kite register --kontrol http:\/\/127\.0\.0\.1:\d+\/kite/ })
})
