import t from 'tap'
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { readKiteKey } from '../lib/kitekey.js'
import { runFixture, runKite, spawnKite, waitForLine } from './helpers/child.js'

// Several processes on a busy machine: the budget is a backstop, each step waits for its event.
t.setTimeout(480_000)

const kite = runKite

/** A long-running `kite …` process; resolves with its first stdout line parsed as JSON. */
async function start<T>(t: Tap.Test, args: string[], home: string): Promise<{ child: ChildProcess; info: T }> {
  const child = spawnKite(t, args, { KITE_HOME: home })
  const [line] = await waitForLine(child, /^\{.*\}$/)
  return { child, info: JSON.parse(line) as T }
}

t.test('kite proxy and kite tunnelproxy: kites behind them are found with kite query and called with kite tell', async (t) => {
  const home = join(t.testdir(), 'operator')
  const { info: kontrol } = await start<{ url: string }>(t, ['kontrol', '--port', '0', '--json', '--username', 'operator'], home)
  const { info: proxy } = await start<{ url: string; kiteURL: string }>(t, ['proxy', '--port', '0', '--host', '127.0.0.1', '--region', 'eu', '--env', 'test', '--json'], home)
  t.match(proxy.kiteURL, /^http:\/\/127\.0\.0\.1:\d+\/kite$/)
  const { info: tunnel } = await start<{ url: string; kiteURL: string }>(t, ['tunnelproxy', '--port', '0', '--host', '127.0.0.1', '--env', 'test', '--json'], home)
  t.match(tunnel.kiteURL, /^ws:\/\/127\.0\.0\.1:\d+\/kite$/, 'the tunnel proxy registers ws://<public-host>/kite, as upstream')

  const key = await readKiteKey(join(home, 'kite.key'))
  const behindProxy = runFixture(t, 'proxied-kite.mjs', { KONTROL_URL: kontrol.url, KITE_KEY: key, PROXY: 'reverse', KITE_NAME: 'public' })
  const behindTunnel = runFixture(t, 'proxied-kite.mjs', { KONTROL_URL: kontrol.url, KITE_KEY: key, PROXY: 'tunnel', NO_LISTEN: '1', KITE_NAME: 'private' })
  const [, , publicURL] = await waitForLine(behindProxy, /^registered (\S+) (\S+)$/)
  const [, , privateURL] = await waitForLine(behindTunnel, /^registered (\S+) (\S+)$/)
  t.match(publicURL, new RegExp(`^${proxy.kiteURL.replace(/\/kite$/, '')}/proxy/[0-9a-f-]{36}$`))
  t.match(privateURL, new RegExp(`^${tunnel.kiteURL.replace(/^ws/, 'http').replace(/\/kite$/, '')}/proxy\\?kiteID=[0-9a-f-]{36}$`))

  const query = await kite(['query', '/operator', '--json'], home)
  t.equal(query.code, 0, query.stderr)
  const found = JSON.parse(query.stdout) as Array<{ url: string; kite: { name: string } }>
  const byName = Object.fromEntries(found.map((k) => [k.kite.name, k.url]))
  t.equal(byName.proxy, proxy.kiteURL, 'kite query lists the reverse proxy')
  t.equal(byName.tunnelproxy, tunnel.kiteURL, 'and the tunnel proxy')
  t.equal(byName.public, publicURL, 'and the kite behind the reverse proxy, at its proxy URL')
  t.equal(byName.private, privateURL, 'and the kite behind the tunnel, at its tunnel URL')

  const viaProxy = await kite(['tell', '/operator/test/public', 'secret'], home)
  t.equal(viaProxy.code, 0, viaProxy.stderr)
  t.equal(viaProxy.stdout, '"hello operator"\n', 'kite tell through the reverse proxy, with a token')
  const viaTunnel = await kite(['tell', '/operator/test/private', 'square', '7'], home)
  t.equal(viaTunnel.code, 0, viaTunnel.stderr)
  t.equal(viaTunnel.stdout, '49\n', 'kite tell through the tunnel')
})

t.test('proxy command usage', async (t) => {
  const empty = t.testdir()
  t.equal((await kite(['proxy'], empty)).code, 2, '--region is required, as upstream')
  const version = await kite(['proxy', '--version'], empty)
  t.equal(version.stdout, '0.0.1\n')
  t.equal((await kite(['tunnelproxy', '--version'], empty)).stdout, '0.0.2\n')
  t.equal((await kite(['proxy', '--region', 'x', '--cert', 'a.pem'], empty)).code, 2, '--cert needs --key')
  const noKey = await kite(['tunnelproxy', '--port', '0'], empty)
  t.equal(noKey.code, 1)
  t.match(noKey.stderr, /no kite\.key/)
  t.match((await kite(['help'], empty)).stdout, /proxy {7}run a reverse proxy[\s\S]*tunnelproxy run a tunnel proxy/)
})
