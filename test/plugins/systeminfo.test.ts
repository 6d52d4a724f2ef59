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
import { Readiness } from '../../plugins/systeminfo/health.js'
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

t.test('liveness: 200 normally, with what @fastify/under-pressure measured', async (t) => {
  // The default limit (1 s) is reported whatever the status: a busy machine may stall this loop that long.
  const defaults = await start(t)
  t.match((await httpGet(`${defaults.base}/health/live`)).body, { maxEventLoopDelayMs: 1000 })
  // A limit no busy machine reaches, so that "normally" is what this test sees.
  const { app, base } = await start(t, { maxEventLoopDelayMs: 60_000 })
  const res = await httpGet(`${base}/health/live`)
  t.equal(res.status, 200)
  t.match(res.body, { status: 'ok', maxEventLoopDelayMs: 60_000 })
  t.type(res.body.eventLoopDelayMs, 'number')
  t.type(res.body.heapUsedBytes, 'number')
  t.type(res.body.rssBytes, 'number')
  t.equal(app.systeminfo.underPressure, false)
})

function blockLoop(ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until) {
    // the event loop is blocked
  }
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

t.test('liveness: 503 while the event loop is blocked past its limit, 200 again after', async (t) => {
  const { base, app } = await start(t, { maxEventLoopDelayMs: 50, sampleIntervalMs: 20 })
  // Block the loop in bursts of 300 ms and probe over a real socket between them, until the probe
  // (which under-pressure answers from its last sample) reports the stall.
  let blocked: { status: number; body: Record<string, unknown> } | null = null
  for (let burst = 0; burst < 40 && blocked === null; burst++) {
    const probe = httpGet(`${base}/health/live`)
    blockLoop(300)
    const res = await probe
    if (res.status === 503) blocked = res
  }
  t.ok(blocked, 'the probe answered 503 while the loop was blocked')
  t.match(blocked?.body, { status: 'under-pressure', maxEventLoopDelayMs: 50 })
  const delay = blocked?.body.eventLoopDelayMs
  // null: the loop did not turn at all within under-pressure's last sample interval.
  t.ok(delay === null || (delay as number) > 50, `reported delay ${String(delay)} ms`)
  const ready = await httpGet(`${base}/health/ready`)
  t.equal(ready.status, 200, 'other routes are still served while under pressure')
  // Once the loop runs freely, the next samples clear the pressure.
  let after = await httpGet(`${base}/health/live`)
  for (let i = 0; i < 200 && after.status !== 200; i++) {
    await pause(25)
    after = await httpGet(`${base}/health/live`)
  }
  t.equal(after.status, 200, '200 again once the loop is free')
  t.equal(after.body.status, 'ok')
  // The flag follows the same samples (a busy machine may add a late one).
  for (let i = 0; i < 200 && app.systeminfo.underPressure; i++) await pause(25)
  t.equal(app.systeminfo.underPressure, false, 'app.systeminfo.underPressure clears too')
})

t.test('liveness: heap and RSS limits are options', async (t) => {
  const { base } = await start(t, { maxHeapUsedBytes: 1024, sampleIntervalMs: 10 })
  let res = await httpGet(`${base}/health/live`)
  for (let i = 0; i < 200 && res.status !== 503; i++) {
    await pause(10)
    res = await httpGet(`${base}/health/live`)
  }
  t.equal(res.status, 503, 'a heap over 1 KiB is over the limit')
  t.equal(res.body.status, 'under-pressure')
  t.ok((res.body.heapUsedBytes as number) > 1024)
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
    ['maxEventLoopUtilization over 1', { maxEventLoopUtilization: 2 }],
    ['maxRssBytes negative', { maxRssBytes: -5 }],
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
