import t from 'tap'
import Fastify from 'fastify'
import { Writable } from 'node:stream'
import pino from 'pino'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { kontrol } from '../../plugins/kontrol/index.js'
import { KiteClient } from '../../lib/client/client.js'
import { eventually } from '../helpers/kontrol.js'

process.env.KITE_HOME = t.testdir({})
delete process.env.KITE_LOG_LEVEL

type Line = Record<string, unknown>
function capture(level: string): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = []
  const stream = new Writable({
    write(chunk, _e, cb) {
      for (const l of String(chunk).split('\n')) if (l !== '') lines.push(JSON.parse(l) as Line)
      cb()
    },
  })
  return { logger: pino({ level }, stream), lines }
}

async function mathApp(t: Tap.Test, level: string) {
  const { logger, lines } = capture(level)
  const app = Fastify({ loggerInstance: logger })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0', closeGraceMs: 100 })
  await app.register(kiteAuth, { kiteKey: false })
  app.kite.handle('square', (req) => {
    req.log.info({ n: req.args[0] }, 'squaring')
    return (req.args[0] as number) ** 2
  }).disableAuthentication()
  app.kite.handle('slow', async () => new Promise((r) => setTimeout(() => r('done'), 20))).disableAuthentication()
  app.kite.handle('broken', () => {
    throw new Error('nope')
  }).disableAuthentication()
  app.kite.handle('secret', () => 'x')
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, lines, url: `${base}/kite` }
}

t.test('one info line per kite call: method, caller, duration, outcome, request id (also in the handler\'s own lines)', async (t) => {
  const { lines, url } = await mathApp(t, 'info')
  const c = new KiteClient(url, { kite: { name: 'calc', username: 'alice' } })
  t.teardown(() => c.close())
  await c.connect()
  await c.tell('square', 4)
  await c.tell('slow')
  await t.rejects(c.tell('broken'))
  await t.rejects(c.tell('secret'), { name: 'KiteError', type: 'authenticationError' })
  const calls = lines.filter((l) => l.msg === 'kite call')
  t.same(calls.map((l) => [l.method, l.outcome]), [['square', 'ok'], ['slow', 'ok'], ['broken', 'genericError'], ['secret', 'authenticationError']])
  for (const l of calls) {
    t.match(l, { level: 30, plugin: 'kite-server', kite: 'math', caller: 'alice', callerKite: 'calc', transport: String, reqId: /^[0-9a-f]{16}$/ })
    t.type(l.responseTime, 'number')
  }
  t.ok((calls[1]!.responseTime as number) >= 15, 'duration measured across the async handler')
  const inside = lines.find((l) => l.msg === 'squaring')!
  t.equal(inside.reqId, calls[0]!.reqId, "the handler's req.log carries the call's request id")
})

t.test('no call lines when the level is above info', async (t) => {
  const { lines, url } = await mathApp(t, 'warn')
  const c = new KiteClient(url)
  t.teardown(() => c.close())
  await c.connect()
  await c.tell('square', 2)
  t.equal(lines.filter((l) => l.msg === 'kite call').length, 0)
})

t.test('SIGUSR2 toggles debug logging of the kite at run time, connections included', async (t) => {
  const { lines, url } = await mathApp(t, 'info')
  const c = new KiteClient(url)
  t.teardown(() => c.close())
  await c.connect()
  await c.tell('square', 2)
  t.equal(lines.filter((l) => l.level === 20).length, 0, 'no debug lines at first')
  process.kill(process.pid, 'SIGUSR2')
  await eventually(() => lines.some((l) => l.msg === 'SIGUSR2: log level changed' && l.level === 30), 5000)
  t.match(lines.find((l) => l.msg === 'SIGUSR2: log level changed'), { level: 30, plugin: 'kite-server' })
  await t.rejects(c.tell('nothing-here'), { name: 'KiteError', type: 'methodNotFound' })
  t.ok(lines.some((l) => l.level === 20 && l.msg === 'method not found'), 'debug lines of an existing connection appear')
  process.kill(process.pid, 'SIGUSR2')
  await eventually(() => lines.filter((l) => l.msg === 'SIGUSR2: log level changed').length === 2, 5000)
  const before = lines.length
  await t.rejects(c.tell('nothing-here'), { name: 'KiteError', type: 'methodNotFound' })
  t.equal(lines.slice(before).filter((l) => l.level === 20).length, 0, 'back to info')
})

t.test('an embedded Kontrol and the app on one stream are told apart: plugin and kite bindings', async (t) => {
  const { logger, lines } = capture('info')
  const k = Fastify({ loggerInstance: logger })
  t.teardown(() => k.close())
  await k.register(kiteServer, { name: 'kontrol', version: '0.0.1', username: 'operator', closeGraceMs: 100 })
  await k.register(kiteAuth, { kiteKey: false })
  await k.register(kontrol, { storage: 'memory' })
  await k.listen({ port: 0, host: '127.0.0.1' })
  t.ok(lines.some((l) => l.plugin === 'kontrol' && l.msg === 'kontrol: generated a new key pair'), "Kontrol's own lines say plugin: 'kontrol'")
  const c = new KiteClient(k.kontrol.url, { auth: { type: 'kiteKey', key: k.kontrol.service.issueKiteKey('bob') } })
  t.teardown(() => c.close())
  await c.connect()
  await c.tell('getKey')
  t.match(lines.find((l) => l.msg === 'kite call'), { kite: 'kontrol', method: 'getKey', caller: 'bob', outcome: 'ok' })
})

