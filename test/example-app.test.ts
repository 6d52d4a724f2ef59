import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { buildMathApp } from '../example-app/app.js'
import { KiteClient } from '../lib/client/client.js'

t.test('the math app answers over HTTP and as a kite', async (t) => {
  const app = await buildMathApp({ fastify: { logger: false } })
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
  await t.rejects(client.tell('square', 'four'), { type: 'genericError', message: 'square needs one number' })
  await t.rejects(client.tell('countdown', 3), { message: 'countdown needs a callback' })
})

t.test('npm start runs the app on PORT and HOST and stops on SIGTERM', async (t) => {
  const server = fileURLToPath(new URL('../dist/example-app/server.js', import.meta.url))
  const child = spawn(process.execPath, [server], { env: { ...process.env, PORT: '0', HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => child.kill('SIGKILL'))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /math kite at (http:\/\/[^ ]+\/kite)/.exec(out)
      if (m) resolve(m[1]!)
    })
    child.once('exit', () => reject(new Error(`exited early: ${out}`)))
  })
  const client = new KiteClient(url, { transport: 'xhr-polling' })
  await client.connect()
  t.equal(await client.tell('square', 7), 49)
  await client.close()
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exits 0 after a graceful close')
})
