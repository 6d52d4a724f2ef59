import t from 'tap'
import { runKite } from './helpers/child.js'
import { Type } from 'typebox'
import { kiteCallback } from '../lib/methods/callback-schema.js'
import { startKite } from './helpers/server.js'

// Six `kite` child processes: slow on a busy machine.
t.setTimeout(480_000)


const kite = runKite

t.test('kite tell ... cb prints each callback call as a JSON line; kite describe lists methods and schemas', async (t) => {
  const { url } = await startKite(t, { describe: 'public' }, (app) => {
    app.kite.handle(
      'countdown',
      { schema: { args: [Type.Integer({ minimum: 0, maximum: 10 }), kiteCallback([Type.Integer()])], result: Type.String() }, auth: false, description: 'counts down' },
      async (req) => {
        const [n, onTick] = req.args as [number, (i: number) => Promise<void>]
        for (let i = n; i > 0; i--) await onTick(i)
        return 'done'
      },
    )
    app.kite.handle('echo', { auth: false }, (req) => req.args)
  })
  const { url: goLike } = await startKite(t, { describe: false })
  const home = t.testdir()

  const tell = await kite(['tell', url, 'countdown', '3', 'cb'], home)
  t.equal(tell.code, 0, tell.stderr)
  t.equal(tell.stdout, '[3]\n[2]\n[1]\n"done"\n', 'one JSON line per callback call, then the result')
  t.equal((await kite(['tell', url, 'echo', '"cb"'], home)).stdout, '["cb"]\n', '"cb" in JSON quotes is the string')
  const invalid = await kite(['tell', url, 'countdown', '30', 'cb'], home)
  t.equal(invalid.code, 1)
  t.equal(invalid.stderr, 'kite tell: argumentError: args/0 must be <= 10\n')

  const described = await kite(['describe', url], home)
  t.equal(described.code, 0, described.stderr)
  t.match(described.stdout, /^\/unknown\/unknown\/math\/1\.0\.0\/unknown\/[^/]+\/[0-9a-f-]{36}\n/)
  t.match(described.stdout, /\n {2}countdown \(no auth\) - counts down\n {6}args: {3}\{"type":"array","items":\[\{"type":"integer","minimum":0,"maximum":10\},\{"x-kite-callback":true,"x-kite-callback-params":\[\{"type":"integer"\}\]\}\],"minItems":2,"additionalItems":false\}\n {6}result: \{"type":"string"\}\n/)
  t.match(described.stdout, /\n {2}echo \(no auth\)\n/)
  const json = JSON.parse((await kite(['describe', url, '--json'], home)).stdout) as { methods: Array<{ name: string }> }
  t.ok(json.methods.some((m) => m.name === 'countdown'))

  const plain = await kite(['describe', goLike], home)
  t.equal(plain.code, 1)
  t.equal(plain.stderr, `kite describe: ${goLike} does not describe its methods (no kite.describe: a Go or kite.js kite, or describe turned off)\n`, 'a kite without kite.describe answers methodNotFound, reported plainly')
})

t.test('kite describe against a kite.js kite, which never answers methods it does not know, says so in one line', async (t) => {
  const { createRequire } = await import('node:module')
  const kitejs = createRequire(import.meta.url)('./helpers/kitejs.cjs') as typeof import('./helpers/kitejs.cjs')
  const server = await kitejs.startKiteServer({ transport: 'ws', api: { square: (x: number, cb: (e: unknown, r: unknown) => void) => cb(null, x * x) } })
  t.teardown(() => server.close())
  const home = t.testdir()
  const told = await kite(['tell', server.url, 'square', '5'], home)
  t.equal(told.stdout, '25\n', told.stderr)
  const described = await kite(['describe', server.url, '--timeout', '1500'], home)
  t.equal(described.code, 1)
  t.equal(described.stderr, `kite describe: ${server.url} did not answer kite.describe in 1500 ms (kite.js kites never answer methods they do not know)\n`)
})
