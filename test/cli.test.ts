import { readFileSync } from 'node:fs'
import t from 'tap'
import { runKite, spawnKite, waitForLine } from './helpers/child.js'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { readKiteKey } from '../lib/kitekey.js'

const fixture = fileURLToPath(new URL('./fixtures/registered-kite.mjs', import.meta.url))

const kite = runKite

/** Starts a long-running child and resolves with its first stdout line. */
async function start(t: Tap.Test, args: string[], env: NodeJS.ProcessEnv, script?: string): Promise<{ child: ChildProcess; line: string }> {
  const child = spawnKite(t, args, env, script)
  const [line] = await waitForLine(child, /^.+$/)
  return { child, line }
}

// About 25 node processes (kite commands, two Kontrols, a kite), each a few seconds on a busy
// machine: the file's budget is a backstop, every step waits for what it needs.
t.setTimeout(480_000)

t.test('the kite command against a real Kontrol and kite', async (t) => {
  const home = join(t.testdir(), 'operator')
  const other = join(t.testdir(), 'other')

  const kontrol = await start(t, ['kontrol', '--port', '0', '--json', '--username', 'operator'], { KITE_HOME: home })
  const started = JSON.parse(kontrol.line) as { url: string; publicKey: string; kiteKeyPath: string }
  t.match(started.url, /^http:\/\/127\.0\.0\.1:\d+\/kite$/)
  t.match(started.publicKey, /BEGIN PUBLIC KEY/)
  t.equal(started.kiteKeyPath, join(home, 'kite.key'), "the first start writes the operator's kite.key")

  const show = await kite(['showkey'], home)
  t.equal(show.code, 0)
  t.match(show.stdout, /^sub {12}operator\niss {12}operator\nkontrolURL {5}http:\/\/127\.0\.0\.1:\d+\/kite\n/)
  const showJson = JSON.parse((await kite(['showkey', '--json'], home)).stdout) as { claims: Record<string, unknown> }
  t.equal(showJson.claims.kontrolURL, started.url)
  const verified = await kite(['showkey', '--verify'], home)
  t.equal(verified.code, 0)
  t.match(verified.stdout, /kite\.key is valid and accepted by its kontrol/)

  const registered = await kite(['register', '--kontrol', started.url, '--username', 'zed'], other)
  t.equal(registered.code, 0, registered.stderr)
  t.match(registered.stdout, /Registered successfully/)
  t.match((await kite(['showkey'], other)).stdout, /^sub {12}zed\n/)

  // A kite registered with the Kontrol, in its own process.
  const operatorKey = await readKiteKey(join(home, 'kite.key'))
  await start(t, [], { KONTROL_URL: started.url, KITE_KEY: operatorKey, KITE_NAME: 'worker' }, fixture)

  const query = await kite(['query', '/operator/test/worker'], home)
  t.equal(query.code, 0, query.stderr)
  t.match(query.stdout, /^1\toperator\/test\/worker\/1\.0\.0\/unknown\/[^/]+\/[0-9a-f-]{36}\thttp:\/\/127\.0\.0\.1:\d+\/kite\n$/)
  const queryJson = JSON.parse((await kite(['query', '/operator/test', '--json'], home)).stdout) as Array<{ url: string; kite: { name: string } }>
  t.equal(queryJson.length, 1)
  t.equal(queryJson[0]!.kite.name, 'worker')
  t.same(JSON.parse((await kite(['query', '/operator/test/nothing', '--json'], home)).stdout), [])
  t.match((await kite(['query', '/operator/test/worker/~> 2.0'], home)).stdout, /no kites found/)

  const viaQuery = await kite(['tell', '/operator/test/worker', 'square', '7'], home)
  t.equal(viaQuery.code, 0, viaQuery.stderr)
  t.equal(viaQuery.stdout, '49\n')
  const viaURL = await kite(['tell', queryJson[0]!.url, 'square', '3'], home)
  t.equal(viaURL.stdout, '9\n')
  const ping = await kite(['ping', queryJson[0]!.url], home)
  t.equal(ping.code, 0)
  t.match(ping.stdout, /^pong from http:\/\/127\.0\.0\.1:\d+\/kite in [\d.]+ ms\n$/)

  const unknown = await kite(['tell', queryJson[0]!.url, 'nope'], home)
  t.equal(unknown.code, 1)
  t.equal(unknown.stderr, 'kite tell: methodNotFound: Method not found: nope\n', 'one clear line, no stack')
  const refused = await kite(['ping', 'http://127.0.0.1:1/kite'], home)
  t.equal(refused.code, 1)
  t.match(refused.stderr, /^kite ping: sendError: cannot connect to http:\/\/127\.0\.0\.1:1\/kite: .*\n$/)
  t.notMatch(refused.stderr, /\n\s+at /)
})

t.test('usage errors, help and a missing kite.key', async (t) => {
  const empty = t.testdir()
  const none = await kite([], empty)
  t.equal(none.code, 2)
  t.match(none.stdout, /usage: kite COMMAND/)
  t.equal((await kite(['help'], empty)).code, 0)
  const pkgVersion = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
  const version = await kite(['--version'], empty)
  t.equal(version.code, 0)
  t.equal(version.stdout, `${pkgVersion}\n`, 'kite --version prints the package version')
  const helpTell = await kite(['tell', '--help'], empty)
  t.equal(helpTell.code, 0)
  t.match(helpTell.stdout, /^kite tell URL\|QUERY METHOD/)
  const bogus = await kite(['frobnicate'], empty)
  t.equal(bogus.code, 2)
  t.equal(bogus.stderr, 'kite: unknown command "frobnicate" (kite help lists them)\n')
  const badOption = await kite(['query', '--bogus'], empty)
  t.equal(badOption.code, 2)
  t.match(badOption.stderr, /Unknown option '--bogus'/)
  t.equal((await kite(['tell', 'http://x/kite'], empty)).code, 2, 'a missing method is a usage error')
  const noKey = await kite(['showkey'], empty)
  t.equal(noKey.code, 1)
  t.match(noKey.stderr, /^kite showkey: no kite\.key at .*kite\.key \(run "kite register --kontrol URL" first\)\n$/)
  t.equal((await kite(['register'], empty)).code, 2, '--kontrol is required')
})

t.test('showkey --verify says plainly why a kite.key fails', async (t) => {
  const home = t.testdir()
  const { makeKontrol } = await import('./helpers/tokens.js')
  const { writeKiteKey } = await import('../lib/kitekey.js')
  const stranger = makeKontrol('nobody')
  await writeKiteKey(stranger.kiteKey('me', { kontrolURL: 'http://127.0.0.1:1/kite' }), join(home, 'kite.key'))
  const unreachable = await kite(['showkey', '--verify'], home)
  t.equal(unreachable.code, 1)
  t.match(unreachable.stderr, /^kite\.key could not be checked: Kontrol at http:\/\/127\.0\.0\.1:1\/kite does not answer; the key's signature is valid/, 'an unreachable Kontrol is not an invalid key')
  const [h, p] = stranger.kiteKey('me').split('.')
  await writeKiteKey(`${h}.${p}.${Buffer.from('forged').toString('base64url')}`, join(home, 'kite.key'))
  const forged = await kite(['showkey', '--verify', '--json'], home)
  t.equal(forged.code, 1)
  t.match(JSON.parse(forged.stdout), { valid: false, problem: /signature does not match/ })
})

t.test('a kite.key whose Kontrol moved: showkey --verify says so, kite register refreshes it', async (t) => {
  const home = join(t.testdir(), 'moved')
  const first = await start(t, ['kontrol', '--port', '0', '--json', '--username', 'operator', '--registration', 'none'], { KITE_HOME: home })
  const urlA = (JSON.parse(first.line) as { url: string }).url
  first.child.kill('SIGKILL')
  await new Promise((r) => first.child.once('exit', r))
  // Port 0 may hand out the port the first Kontrol just freed: then start again, on another.
  let urlB = urlA
  for (let attempt = 0; attempt < 5 && urlB === urlA; attempt++) {
    const second = await start(t, ['kontrol', '--port', '0', '--json', '--username', 'operator', '--registration', 'none'], { KITE_HOME: home })
    urlB = (JSON.parse(second.line) as { url: string }).url
    if (urlB === urlA) {
      second.child.kill('SIGKILL')
      await new Promise((r) => second.child.once('exit', r))
    }
  }
  t.not(urlA, urlB)

  const moved = await kite(['showkey', '--verify'], home)
  t.equal(moved.code, 1)
  t.match(moved.stderr, `kite.key could not be checked: Kontrol at ${urlA} does not answer; the key's signature is valid`)
  t.notMatch(moved.stderr, /is not valid/)
  t.match(moved.stderr, `kite register --kontrol NEW_URL`)

  const refreshed = await kite(['register', '--kontrol', urlB], home)
  t.equal(refreshed.code, 0, refreshed.stderr)
  const ok = await kite(['showkey', '--verify', '--json'], home)
  t.equal(ok.code, 0, ok.stderr)
  t.match(JSON.parse(ok.stdout), { valid: true, claims: { sub: 'operator', kontrolURL: urlB } }, 'the fresh kite.key names the Kontrol where it is now (a renewal: registration is closed to new users)')
})

t.test('kite starts fast: each command loads only what it needs (help, --version and showkey neither Fastify nor the client)', async (t) => {
  const home = t.testdir()
  const loaded = async (args: string[]): Promise<string[]> => {
    const file = join(home, `${args.join('-')}.loaded`)
    const hook = fileURLToPath(new URL('./fixtures/loaded-modules.mjs', import.meta.url))
    const child = spawnKite(t, args, { KITE_HOME: home, LOADED_MODULES_FILE: file, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${hook}` })
    await new Promise((resolve) => child.once('close', resolve))
    return readFileSync(file, 'utf8').split('\n')
  }
  const packages = (modules: string[], re: RegExp): string[] => modules.filter((m) => re.test(m))
  for (const args of [['help'], ['--version'], ['showkey']]) {
    t.same(packages(await loaded(args), /\/node_modules\/(fastify|@fastify\/[^/]+|ws|undici|pg|better-sqlite3)\//), [], `kite ${args.join(' ')}`)
  }
  t.same(packages(await loaded(['tell', '--help']), /\/node_modules\/(fastify|@fastify\/[^/]+|undici|pg|better-sqlite3)\//), [], 'kite tell loads the client, and no server')
  const kontrolHelp = await loaded(['kontrol', '--help'])
  t.ok(kontrolHelp.some((m) => /\/node_modules\/fastify\//.test(m)), 'kite kontrol loads what it runs (the check sees modules)')
})
