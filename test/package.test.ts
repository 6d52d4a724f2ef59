/**
 * The package as users get it: what `npm pack` ships, and the tarball
 * installed into a fresh app with `npm install` (the registry for package
 * metadata, tarballs from the npm cache), where every entry point is imported and `npx kite
 * --version` runs. Needs `npm run build` first (`npm test` does it).
 */
import t from 'tap'
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import Fastify from 'fastify'
import semver from 'semver'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string; overrides: Record<string, string> }
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

t.setTimeout(300000)

interface PackResult {
  filename: string
  files: { path: string }[]
}

/** `npm pack` without the prepare build (the build is done already). */
async function pack(args: string[]): Promise<PackResult> {
  const { stdout } = await run(npm, ['pack', '--ignore-scripts', '--json', ...args], { cwd: root, maxBuffer: 16 << 20 })
  return (JSON.parse(stdout) as PackResult[])[0] as PackResult
}

t.test('npm pack --dry-run ships the built package: dist without tests, benches or the example; README; LICENSE', async (t) => {
  const { files } = await pack(['--dry-run'])
  const paths = files.map((f) => f.path).sort()
  for (const must of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/client.js', 'dist/client.d.ts', 'dist/testing.js', 'dist/testing.d.ts', 'dist/browser/kite.js', 'dist/lib/browser/index.d.ts', 'dist/cli/main.js', 'dist/plugins/kontrol/storage/sqlite.js']) {
    t.ok(paths.includes(must), `ships ${must}`)
  }
  const unwanted = paths.filter((p) => /^(test|bench|example-app|scripts|\.ci|lib|cli|plugins)\/|^dist\/(test|bench|example-app)\/|\.map$|^tsconfig|(?<!\.d)\.ts$/.test(p))
  t.same(unwanted, [], 'no tests, benches, example, sources, CI script, tsconfig or source maps')
  t.ok(paths.length < 300, `${paths.length} files`)
})

t.test('the tarball installed into a new app: every entry point works, the client loads no Fastify or driver, npx kite --version', async (t) => {
  // Outside the repository, so that nothing resolves through its node_modules by walking up.
  const dir = mkdtempSync(join(tmpdir(), 'kite-app-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { filename } = await pack(['--pack-destination', dir])
  // The app a user writes: the README's `overrides` line for Node 20 (cookie 1.x), nothing else.
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module', overrides: pkg.overrides }))
  // A real `npm install` of the tarball: tarballs from the npm cache this repository's own
  // install filled, package metadata from the registry (`npm ci` does not cache it, so a fresh
  // machine needs the registry once; `--prefer-offline` uses the cache for the rest).
  // `--omit=optional` as a client-only user has it: no better-sqlite3; pg is not a dependency.
  const install = await run(npm, ['install', '--prefer-offline', '--omit=optional', '--no-audit', '--no-fund', '--ignore-scripts', `./${filename}`], { cwd: dir, maxBuffer: 16 << 20 })
  t.notMatch(install.stderr, /EBADENGINE/, `npm install warns no EBADENGINE on node ${process.version}:\n${install.stderr}`)
  t.match(install.stdout, /added \d+ packages/, install.stdout.trim())
  for (const absent of ['better-sqlite3', 'pg']) t.notOk(existsSync(join(dir, 'node_modules', absent)), `${absent} is not installed`)
  t.ok(existsSync(join(dir, 'node_modules', '.bin', 'kite')), 'npm linked the kite bin')
  const node = async (code: string, env: Record<string, string> = {}): Promise<string> =>
    (await run(process.execPath, ['--input-type=module', '-e', code], { cwd: dir, env: { ...process.env, ...env } })).stdout.trim()

  const main = await node("import * as k from 'fastify-kite'; console.log(['kiteServer','kiteAuth','kontrol','kontrolRegister','systemInfo','kiteMetrics','kiteTracing','kiteReverseProxy','kiteTunnelProxy','KiteClient','KiteError','loadConfig','readKiteKey','kiteCallback'].map((n) => typeof k[n]).join(','))")
  t.equal(main, Array(14).fill('function').join(','), 'the main entry: plugins, client, errors, config, schema helpers')
  const internals = await node("import * as k from 'fastify-kite'; console.log(['MethodTable','KiteConnection','SqliteStorage','PostgresStorage','MemoryStorage','openStorage','kiteToString'].filter((n) => n in k).join(',') || 'none')")
  t.equal(internals, 'none', 'internals are not exported')

  /** The packages a script loads, less those an empty script loads (the test runner's hooks). */
  const packagesLoaded = async (code: string, name: string): Promise<string[]> => {
    const file = join(dir, `${name}.loaded`)
    await node(code, { LOADED_MODULES_FILE: file, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${join(root, 'test/fixtures/loaded-modules.mjs')}` })
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('/node_modules/'))
    return [...new Set(lines.map((l) => /.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(l)?.[1] ?? ''))].sort()
  }
  const baseline = new Set(await packagesLoaded('', 'empty'))
  const packages = (await packagesLoaded("import { KiteClient } from 'fastify-kite/client'; new KiteClient('http://127.0.0.1:1/kite')", 'client')).filter((p) => !baseline.has(p))
  t.ok(packages.includes('fastify-kite'), 'the hook saw the package itself')
  for (const banned of ['fastify', 'pg', 'better-sqlite3', 'pino', '@fastify/websocket']) t.notOk(packages.includes(banned), `fastify-kite/client does not load ${banned}`)
  t.same(packages, ['fastify-kite', 'secure-json-parse', 'ws'], 'fastify-kite/client loads ws and secure-json-parse only')

  const testing = await node(`
    import Fastify from 'fastify'
    import { kiteServer, kiteAuth, kontrolRegister, KiteClient } from 'fastify-kite'
    import { startTestKontrol, testKeyPair } from 'fastify-kite/testing'
    const k = await startTestKontrol()
    const app = Fastify()
    await app.register(kiteServer, { name: 'math', version: '1.0.0' })
    await app.register(kiteAuth, { kiteKey: k.kiteKey('alice') })
    await app.register(kontrolRegister, { kontrolURL: k.url, kiteKey: k.kiteKey('alice') })
    app.kite.handle('square', (req) => req.args[0] ** 2).disableAuthentication()
    const injected = await app.kite.inject('square', 5)
    await app.listen({ port: 0, host: '127.0.0.1' })
    await app.kontrolRegister.ready
    const [found] = await app.kite.getKites({ username: 'alice', name: 'math' })
    await found.connect()
    const called = await found.tell('square', 6)
    await found.close(); await app.close(); await k.close()
    console.log(injected, called, testKeyPair().publicKey.startsWith('-----BEGIN PUBLIC KEY-----'))
  `)
  t.equal(testing, '25 36 true', 'fastify-kite/testing: a Kontrol in one call; inject; a kite registered and found through it')

  const sqlite = await node("import Fastify from 'fastify'; import { kiteServer, kiteAuth, kontrol } from 'fastify-kite'; const app = Fastify(); await app.register(kiteServer, { name: 'kontrol', version: '1.0.0' }); await app.register(kiteAuth, { kiteKey: false }); try { await app.register(kontrol, { storage: 'sqlite::memory:' }); await app.ready(); console.log('no error') } catch (err) { console.log(err.message) }")
  t.equal(sqlite, 'this Kontrol storage needs the better-sqlite3 package: npm install better-sqlite3', 'without the optional driver, choosing SQLite says what to install')

  // The README's testing example, as a user would paste it.
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const example = /<!-- runnable: testing\b[^>]*-->\n```js\n([\s\S]*?)```/.exec(readme)?.[1]
  t.ok(example, 'the README has the runnable test example')
  writeFileSync(join(dir, 'readme.test.mjs'), example ?? '')
  const readmeRun = await run(process.execPath, ['--test', 'readme.test.mjs'], { cwd: dir }).catch((err: { stdout: string; stderr: string }) => err)
  t.match(readmeRun.stdout, /# pass 1\n# fail 0/, `the README's testing example passes:\n${readmeRun.stdout}${readmeRun.stderr}`)

  t.match(await node("console.log(import.meta.resolve('fastify-kite/browser'))"), /node_modules\/fastify-kite\/dist\/browser\/kite\.js$/, 'fastify-kite/browser resolves to the bundle')
  const version = (await run('npx', ['--offline', 'kite', '--version'], { cwd: dir })).stdout.trim()
  t.equal(version, pkg.version, 'npx kite --version')
})

t.test('every installed package accepts this Node (no EBADENGINE): cookie is 1.x for light-my-request, and injected cookies still work', async (t) => {
  // What npm's EBADENGINE check does, over the whole installed tree.
  const all = (await run(npm, ['ls', '--all', '--parseable'], { cwd: root, maxBuffer: 16 << 20 })).stdout.split('\n').filter((l) => l.includes('/node_modules/'))
  const refusing: string[] = []
  for (const dir of all) {
    const p = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; version: string; engines?: { node?: string } }
    const range = p.engines?.node
    if (typeof range === 'string' && !semver.satisfies(process.version, range)) refusing.push(`${p.name}@${p.version} wants node ${range}`)
  }
  t.same(refusing, [], `all ${all.length} packages accept node ${process.version}`)
  const ls = JSON.parse(execFileSync(npm, ['ls', 'cookie', '--json'], { cwd: root, encoding: 'utf8' })) as { dependencies: { fastify: { dependencies: { 'light-my-request': { dependencies: { cookie: { version: string } } } } } } }
  t.equal(ls.dependencies.fastify.dependencies['light-my-request'].dependencies.cookie.version, '1.1.1', 'the override pins cookie 1.1.1 (node >=18)')
  const app = Fastify()
  app.get('/', async (req) => req.headers.cookie ?? '')
  const res = await app.inject({ url: '/', cookies: { a: '1', b: 'x y' } })
  t.equal(res.body, 'a=1; b=x%20y', 'light-my-request encodes cookies with cookie 1.x')
  await app.close()
})
