import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { statfs } from 'node:fs/promises'
import { createServer, get } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import { KiteError } from '../../lib/errors.js'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { systemInfo, type SystemInfoOptions } from '../../plugins/systeminfo/index.js'
import { collectSystemInfo, defaultProbes, diskFromStatfs, goos, memoryFromMeminfo } from '../../plugins/systeminfo/collect.js'
import { EventLoopMonitor, Readiness } from '../../plugins/systeminfo/health.js'
import { connectClient, startKite } from '../helpers/server.js'

const GO_FIELDS = ['diskTotal', 'diskUsage', 'homeDir', 'memoryUsage', 'state', 'totalMemoryLimit', 'uname']
const AUTH = { test: () => ({ username: 'tester' }) }

/** GET over a fresh connection (no keep-alive pool left behind). */
function httpGet(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }))
    }).on('error', reject)
  })
}

function checkShape(t: Test, info: Record<string, unknown>): void {
  t.same(Object.keys(info).sort(), GO_FIELDS, 'exactly the Go field names')
  t.equal(info.state, 'RUNNING')
  for (const k of ['diskUsage', 'diskTotal', 'memoryUsage', 'totalMemoryLimit']) t.ok(Number.isSafeInteger(info[k]) && (info[k] as number) >= 0, `${k} is a non-negative integer`)
  t.type(info.homeDir, 'string')
  t.type(info.uname, 'string')
}

async function start(t: Test, options: SystemInfoOptions = {}) {
  return startKite(t, { authenticators: AUTH }, async (app) => {
    await app.register(systemInfo, options)
  })
}

t.test('kite.systemInfo answers Go field names, types and units', async (t) => {
  const { url } = await start(t)
  const client = await connectClient(t, url, { auth: { type: 'test', key: 'x' } })
  const info = (await client.tell('kite.systemInfo')) as Record<string, unknown>
  checkShape(t, info)

  const fs = await statfs('/', { bigint: true })
  const kib = Number((fs.blocks * fs.bsize) / 1024n)
  t.ok(Math.abs((info.diskTotal as number) - kib) <= 1, 'diskTotal is in KiB (blocks × bsize / 1024)')
  t.equal(info.diskTotal, Number((fs.blocks * (fs.bsize / 512n)) / 2n), 'diskTotal uses Go integer maths')
  t.ok((info.diskUsage as number) <= (info.diskTotal as number), 'diskUsage ≤ diskTotal')
  t.ok((info.memoryUsage as number) > 0 && (info.memoryUsage as number) < (info.totalMemoryLimit as number), '0 < memoryUsage < totalMemoryLimit')
  t.equal(info.homeDir, os.homedir())
  t.equal(info.uname, goos())
  if (process.platform === 'linux') {
    t.equal(info.totalMemoryLimit, os.totalmem(), 'totalMemoryLimit in bytes')
    t.equal(info.uname, 'linux')
  }
})

t.test('kite.systemInfo needs credentials', async (t) => {
  const { url } = await start(t)
  const client = await connectClient(t, url)
  const err = (await client.tell('kite.systemInfo').catch((e: unknown) => e)) as KiteError
  t.ok(err instanceof KiteError)
  t.equal(err.type, 'authenticationError')
})

t.test('the HTTP system-information route answers the same shape', async (t) => {
  const { base } = await start(t)
  const res = await httpGet(`${base}/systeminfo`)
  t.equal(res.status, 200)
  checkShape(t, res.body)
  const custom = await start(t, { systemInfoPath: '/kite-info', livePath: false, readyPath: false })
  t.equal((await httpGet(`${custom.base}/kite-info`)).status, 200, 'the path is configurable')
  t.equal((await custom.app.inject('/health/ready')).statusCode, 404, 'a probe can be left out')
})

t.test('collect helpers follow Go', async (t) => {
  t.equal(goos('win32'), 'windows')
  t.equal(goos('darwin'), 'darwin')
  t.equal(goos('linux'), 'linux')
  t.same(diskFromStatfs({ bsize: 4096n, blocks: 1000n, bfree: 250n, bavail: 200n }), { diskTotal: 4000, diskUsage: 3000 })
  t.same(diskFromStatfs({ bsize: 4096n, blocks: 1000n, bfree: 250n, bavail: 200n }, true), { diskTotal: 4000, diskUsage: 3200 }, 'Windows: free for the caller')
  const meminfo = 'MemTotal:       16000 kB\nMemFree:         4000 kB\nMemAvailable:   9000 kB\nBuffers:          1000 kB\nCached:           3000 kB\n'
  t.same(memoryFromMeminfo(meminfo), { memoryUsage: 8000 * 1024, totalMemoryLimit: 16000 * 1024 })
  t.throws(() => memoryFromMeminfo('Buffers: 1 kB\n'), /MemTotal/)
  const failing = { ...defaultProbes, platform: 'linux' as const, statfs: () => Promise.reject(new Error('statfs failed')) }
  await t.rejects(collectSystemInfo(failing), /statfs failed/, 'errors are thrown (genericError for kite callers)')
  const mac = await collectSystemInfo({ ...defaultProbes, platform: 'darwin', totalmem: () => 1000, freemem: () => 300, homedir: () => { throw new Error('no home') } })
  t.equal(mac.memoryUsage, 700)
  t.equal(mac.totalMemoryLimit, 1000)
  t.equal(mac.homeDir, '', 'homeDir is "" on error')
})

t.test('readiness: starting, ready, not-ready', async (t) => {
  let seenWhileStarting: { status: number; body: unknown } | undefined
  let checkResult = true
  const { app, base } = await startKite(t, {}, async (app) => {
    // Added before the plugin's own onReady hook, so it runs first: the app is still starting.
    // Fastify listens only once ready, so serve the app's routes from a plain server meanwhile.
    app.addHook('onReady', async () => {
      const early = createServer((req, res) => app.routing(req, res))
      await new Promise<void>((resolve) => early.listen(0, '127.0.0.1', resolve))
      try {
        const { port } = early.address() as AddressInfo
        seenWhileStarting = await httpGet(`http://127.0.0.1:${port}/health/ready`)
      } finally {
        await new Promise((resolve) => early.close(resolve))
      }
    })
    await app.register(systemInfo, { readyWhen: () => checkResult })
  })
  t.same(seenWhileStarting, { status: 503, body: { status: 'starting' } }, '503 starting before onReady')

  let res = await httpGet(`${base}/health/ready`)
  t.same([res.status, res.body], [200, { status: 'ready' }])
  t.equal(app.systeminfo.state, 'ready')

  checkResult = false
  res = await httpGet(`${base}/health/ready`)
  t.same([res.status, res.body], [503, { status: 'not-ready' }], 'readyWhen false')
  t.equal(app.systeminfo.state, 'ready', 'the lifecycle phase does not apply the check')

  app.systeminfo.setReadyCheck(async () => true)
  t.equal(await app.systeminfo.checkReady(), 'ready', 'setReadyCheck replaces the check')
  app.systeminfo.setReadyCheck(() => {
    throw new Error('boom')
  })
  t.equal(await app.systeminfo.checkReady(), 'not-ready', 'a throwing check is not ready')
  app.systeminfo.setReadyCheck(null)
  t.equal(await app.systeminfo.checkReady(), 'ready')
  t.throws(() => app.systeminfo.setReadyCheck('yes' as never), TypeError)
})

t.test('readiness: a check that never settles times out as not-ready', async (t) => {
  const { base } = await startKite(t, {}, async (app) => {
    await app.register(systemInfo, { readyWhen: () => new Promise<boolean>(() => {}), readyCheckTimeoutMs: 20 })
  })
  const res = await httpGet(`${base}/health/ready`)
  t.same([res.status, res.body], [503, { status: 'not-ready' }])
})

t.test('readiness: draining while the app closes', async (t) => {
  // Fastify answers its own 503 to requests arriving during close unless return503OnClosing is false.
  const app = Fastify({ return503OnClosing: false })
  t.teardown(() => app.close())
  await app.register(kiteServer, { name: 'math', version: '1.0.0' })
  await app.register(systemInfo)
  let during: { status: number; body: unknown } | undefined
  let phase: string | undefined
  app.addHook('preClose', async () => {
    phase = app.systeminfo.state
    during = await httpGet(`${base}/health/ready`)
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal((await httpGet(`${base}/health/ready`)).status, 200)
  await app.close()
  t.equal(phase, 'draining')
  t.same(during, { status: 503, body: { status: 'draining' } })
})

t.test('liveness: 200 normally, and the sampler stops on close', async (t) => {
  const { app, base } = await start(t)
  t.ok(app.systeminfo.sampling, 'sampling after ready')
  const res = await httpGet(`${base}/health/live`)
  t.equal(res.status, 200)
  t.match(res.body, { status: 'ok', maxEventLoopDelayMs: 1000 })
  t.type(res.body.eventLoopDelayMs, 'number')
  await app.close()
  t.notOk(app.systeminfo.sampling, 'no sampler timer left after close')
})

t.test('liveness: 503 after the event loop was blocked past the threshold', async (t) => {
  const { app } = await start(t, { maxEventLoopDelayMs: 50, sampleIntervalMs: 10 })
  const until = Date.now() + 300
  while (Date.now() < until) {
    // block the event loop
  }
  const res = await app.inject('/health/live')
  t.equal(res.statusCode, 503)
  const body = res.json() as { status: string; eventLoopDelayMs: number }
  t.equal(body.status, 'stuck')
  t.ok(body.eventLoopDelayMs > 50, `reported delay ${body.eventLoopDelayMs} ms`)
})

t.test('event-loop monitor with an injected clock', async (t) => {
  let now = 0
  const m = new EventLoopMonitor({ intervalMs: 10, windowMs: 1000, clock: () => now })
  t.equal(m.delayMs(), 0, 'nothing measured yet')
  m.sample()
  now = 10
  m.sample()
  t.equal(m.delayMs(), 0, 'on time')
  now = 15
  t.equal(m.delayMs(), 0, 'within the interval')
  now = 310
  t.equal(m.delayMs(), 290, 'an ongoing stall shows before the next tick')
  m.sample()
  t.equal(m.delayMs(), 290, 'and after it, from the sample')
  now = 320
  m.sample()
  t.equal(m.delayMs(), 290, 'remembered within the window')
  while (now < 1400) {
    now += 10
    m.sample()
  }
  t.equal(m.delayMs(), 0, 'forgotten after the window of on-time ticks')
  t.notOk(m.running)
  m.start()
  t.ok(m.running)
  m.stop()
  t.notOk(m.running)
  t.equal(m.delayMs(), 0)
})

t.test('readiness phases without a server', async (t) => {
  let closing = false
  const r = new Readiness({ check: null, timeoutMs: 10, closing: () => closing })
  t.equal(await r.evaluate(), 'starting')
  r.markReady()
  t.equal(await r.evaluate(), 'ready')
  closing = true
  t.equal(r.phase, 'draining', 'the kite shutting down counts as draining')
  closing = false
  r.markDraining()
  r.markReady()
  t.equal(r.phase, 'draining', 'no way back from draining')
})

t.test('bad options fail at register', async (t) => {
  const bad: Array<[string, SystemInfoOptions]> = [
    ['maxEventLoopDelayMs negative', { maxEventLoopDelayMs: -1 }],
    ['maxEventLoopDelayMs not a number', { maxEventLoopDelayMs: '50' as never }],
    ['sampleIntervalMs zero', { sampleIntervalMs: 0 }],
    ['readyCheckTimeoutMs infinite', { readyCheckTimeoutMs: Infinity }],
    ['path without slash', { systemInfoPath: 'systeminfo' }],
    ['path not a string', { livePath: 42 as never }],
    ['same path twice', { livePath: '/health', readyPath: '/health' }],
    ['readyWhen not a function', { readyWhen: true as never }],
  ]
  for (const [name, options] of bad) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(kiteServer, { name: 'math', version: '1.0.0' })
    await t.rejects(async () => app.register(systemInfo, options), TypeError, name)
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => app.register(systemInfo), /kite-server/, 'needs kite-server')
})
