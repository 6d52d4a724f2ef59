/**
 * The browser client in a real headless Chromium (Debian's `chromium`,
 * driven by playwright-core): the example page against the math kite, on each
 * transport, with token auth; and the browser client against a kite.js server.
 * Skipped, saying so, only where no Chromium is installed (`.ci/run` installs it).
 */
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import type { BrowserContext, Page } from 'playwright-core'
import type * as KitejsHelpers from '../helpers/kitejs.cjs'
import { buildMathApp } from '../../example-app/app.js'
import { startTestKontrol } from '../../testing.js'

const require = createRequire(import.meta.url)
const kitejs = require('../helpers/kitejs.cjs') as typeof KitejsHelpers

// Starting Chromium and five pages takes a while on a busy machine.
t.setTimeout(240000)

const CHROMIUM = process.env.KITE_TEST_CHROMIUM ?? '/usr/bin/chromium'
const BUNDLE = new URL('../../dist/browser/kite.js', import.meta.url)
const MAX_GZIP_BYTES = 15 * 1024

t.test('the browser bundle is one ES module of at most 15 kB min+gzip, with no Node built-ins', async (t) => {
  const code = readFileSync(BUNDLE)
  const gz = gzipSync(code, { level: 9 }).length
  t.comment(`dist/browser/kite.js: ${(code.length / 1024).toFixed(1)} kB min, ${(gz / 1024).toFixed(1)} kB min+gzip`)
  t.ok(gz <= MAX_GZIP_BYTES, `${gz} bytes gzip ≤ ${MAX_GZIP_BYTES}`)
  const text = code.toString()
  t.notMatch(text, /\bfrom\s*["'](node:|ws["']|pino["'])/, 'imports nothing from Node, ws or pino')
  t.notMatch(text, /\brequire\(/, 'no require()')
})

if (!existsSync(CHROMIUM)) {
  t.test('the example page and kite.js in headless Chromium', { skip: `no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set KITE_TEST_CHROMIUM; .ci/run installs it` }, () => {})
} else {
  const { chromium } = await import('playwright-core')
  const profile = await mkdtemp(join(tmpdir(), 'kite-chromium-'))
  // A fresh profile each run; without the background-networking flags Chromium's own connections get refused.
  const browser: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60000,
  })
  t.teardown(async () => {
    await browser.close()
    await rm(profile, { recursive: true, force: true })
  })

  const kontrol = await startTestKontrol()
  t.teardown(() => kontrol.close())
  const app = await buildMathApp({ fastify: { logger: false }, kontrol: { url: kontrol.url, kiteKey: kontrol.kiteKey('alice') } })
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  await app.kontrolRegister.ready
  // What a page's backend would hand its page: a token for the math kite, for user "webuser".
  const token = await kontrol.token({ username: 'alice', name: 'math' }, 'webuser')

  /** A new tab; `errors` collects what the page failed to catch. */
  async function newPage(t: Tap.Test): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage()
    t.teardown(() => page.close())
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    return { page, errors }
  }

  for (const transport of ['sockjs', 'xhr-polling', 'websocket', 'auto'] as const) {
    t.test(`the example page over ${transport}: square(4), countdown ticks, the server's call to the page, token auth`, async (t) => {
      const { page, errors } = await newPage(t)
      await page.goto(`${base}/?transport=${transport}&token=${encodeURIComponent(token)}`)
      await page.locator('#status').filter({ hasText: /^(done|error)/ }).waitFor({ timeout: 30000 })
      t.equal(await page.locator('#status').textContent(), 'done')
      t.equal(await page.locator('#transport').textContent(), transport)
      t.equal(await page.locator('#square').textContent(), '16', 'square(4) is 16')
      t.same(await page.locator('#ticks .tick').allTextContents(), ['5', '4', '3', '2', '1'], 'countdown showed its ticks')
      t.equal(await page.locator('#countdown').textContent(), 'done')
      t.equal(await page.locator('#greeting').textContent(), `hello, a page at ${new URL(base).host} (asked by math)`, 'the page answered the server')
      t.equal(await page.locator('#whoami').textContent(), 'webuser', 'the token authenticated the page')
      await page.fill('#n', '12')
      await page.click('#again')
      await page.locator('#square').filter({ hasText: '144' }).waitFor({ timeout: 10000 })
      t.same(errors, [], 'no uncaught errors in the page')
    })
  }

  t.test('the browser client: a bad token is refused with a clear error, an unknown method too', async (t) => {
    const { page, errors } = await newPage(t)
    await page.goto(`${base}/?token=not-a-token`)
    await page.locator('#status').filter({ hasText: /^(done|error)/ }).waitFor({ timeout: 30000 })
    t.match(await page.locator('#status').textContent(), /^error: authenticationError /)
    const err = await page.evaluate(async () => {
      const c = (globalThis as unknown as { kiteClient: { tell(m: string): Promise<unknown> } }).kiteClient
      return c.tell('nope').then(
        () => null,
        (e: { type?: string; message: string }) => ({ type: e.type, message: e.message }),
      )
    })
    t.same(err, { type: 'methodNotFound', message: 'Method not found: nope' })
    t.same(errors, [], 'no uncaught errors in the page')
  })

  t.test('the browser client calls a kite.js server (raw WebSocket and SockJS), callbacks included', async (t) => {
    const api = {
      square: (x: number, cb: (err: unknown, result: unknown) => void) => cb(null, x * x),
      countdown: (n: number, progress: (err: unknown, i: number) => void, cb: (err: unknown, r: unknown) => void) => {
        for (let i = n; i > 0; i--) progress(null, i)
        cb(null, 'done')
      },
    }
    const ws = await kitejs.startKiteServer({ transport: 'ws', api })
    t.teardown(() => ws.close())
    const sockjs = await kitejs.startKiteServer({ transport: 'sockjs', prefix: '/kite', api })
    t.teardown(() => sockjs.close())
    const { page, errors } = await newPage(t)
    await page.goto(`${base}/`)
    for (const [url, transport] of [[ws.url, 'websocket'], [sockjs.url, 'sockjs'], [sockjs.url, 'xhr-polling']] as const) {
      const got = await page.evaluate(
        async ([url, transport]) => {
          const { KiteClient } = (await import('/kite.js' as string)) as typeof import('../../lib/browser/index.js')
          const c = new KiteClient(url, { transport, timeout: 5000 })
          await c.connect()
          const square = await c.tell('square', 4)
          const ticks: unknown[] = []
          const done = await c.tell('countdown', 3, (tick: unknown) => ticks.push(tick))
          await c.close()
          return { square, ticks, done }
        },
        [url, transport] as const,
      )
      t.same(got, { square: 16, ticks: [{ error: null, result: 3 }, { error: null, result: 2 }, { error: null, result: 1 }], done: 'done' }, `kite.js over ${transport}`)
    }
    t.same(errors, [], 'no uncaught errors in the page')
  })
}
