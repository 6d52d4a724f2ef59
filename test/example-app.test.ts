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
})

t.test('npm start: an embedded Kontrol and the math kite registered with it, on PORT and HOST; stops on SIGTERM', async (t) => {
  const server = fileURLToPath(new URL('../dist/example-app/server.js', import.meta.url))
  const home = t.testdir()
  const child = spawn(process.execPath, [server], { env: { ...process.env, PORT: '0', KONTROL_PORT: '0', HOST: '127.0.0.1', KITE_HOME: home, KITE_USERNAME: 'demo' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => child.kill('SIGKILL'))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /math kite at (http:\/\/[^ ]+\/kite), registered with kontrol/.exec(out)
      if (m) resolve(m[1]!)
    })
    child.once('exit', () => reject(new Error(`exited early: ${out}`)))
  })
  const client = new KiteClient(url, { transport: 'xhr-polling' })
  await client.connect()
  t.equal(await client.tell('square', 7), 49)
  await client.close()
  const base = url.replace(/\/kite$/, '')
  t.equal((await fetch(`${base}/health/ready`)).status, 200, 'ready once registered')
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
