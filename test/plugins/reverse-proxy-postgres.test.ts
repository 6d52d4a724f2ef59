import t from 'tap'
import { startKontrol } from '../helpers/kontrol.js'
import { runFixture, waitForLine } from '../helpers/child.js'
import { freshSchemaURL } from '../helpers/postgres.js'
import { callEveryTransport, findKites, startReverseProxy, startTunnelProxy } from '../helpers/proxy.js'
import type { PostgresStorage } from '../../plugins/kontrol/storage/postgres.js'

// Several processes on a busy machine: more than the default per-file timeout.
t.setTimeout(240000)

t.test('both proxies and the kites behind them, with Kontrol on PostgreSQL: found with getKites, called through the proxy URLs', async (t) => {
  const kontrol = await startKontrol(t, { storage: freshSchemaURL(t, 'kite_proxy') })
  t.equal((kontrol.app.kontrol.storage as PostgresStorage).layout, 'own', 'Kontrol stores its kites in PostgreSQL')
  const reverse = await startReverseProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('proxy-owner') })
  const tunnel = await startTunnelProxy(t, { kontrolURL: kontrol.url, kiteKey: kontrol.kiteKey('kontrol-owner') })

  const bob = kontrol.kiteKey('bob')
  const [proxyFound] = await findKites(t, kontrol.url, bob, { name: 'proxy' })
  t.equal(proxyFound?.url, `${reverse.base}/kite`, 'getKites finds the reverse proxy')
  const [tunnelFound] = await findKites(t, kontrol.url, bob, { name: 'tunnelproxy' })
  t.equal(tunnelFound?.url, `${tunnel.base.replace('https', 'wss')}/kite`, 'getKites finds the tunnel proxy')

  const behindProxy = runFixture(t, 'proxied-kite.mjs', { KONTROL_URL: kontrol.url, KITE_KEY: kontrol.kiteKey('alice'), PROXY: 'reverse', KITE_NAME: 'public' })
  const behindTunnel = runFixture(t, 'proxied-kite.mjs', { KONTROL_URL: kontrol.url, KITE_KEY: kontrol.kiteKey('alice'), PROXY: 'tunnel', NO_LISTEN: '1', KITE_NAME: 'private' })
  const [, publicID, publicURL] = await waitForLine(behindProxy, /^registered (\S+) (\S+)$/)
  const [, privateID, privateURL] = await waitForLine(behindTunnel, /^registered (\S+) (\S+)$/)
  t.equal(publicURL, `${reverse.base}/proxy/${publicID}`)
  t.equal(privateURL, `${tunnel.base}/proxy?kiteID=${privateID}`)

  const [publicKite] = await findKites(t, kontrol.url, bob, { name: 'public' })
  t.equal(publicKite?.url, publicURL, 'getKites gives the reverse proxy URL of the kite behind it')
  await callEveryTransport(t, publicKite!.url, publicKite!.token, 'the reverse proxy')
  const [privateKite] = await findKites(t, kontrol.url, bob, { name: 'private' })
  t.equal(privateKite?.url, privateURL, 'getKites gives the tunnel proxy URL of the kite behind it')
  await callEveryTransport(t, privateKite!.url, privateKite!.token, 'the tunnel proxy')

  const storage = kontrol.app.kontrol.storage
  t.equal((await storage.get(publicID!))?.url, publicURL, 'the row in PostgreSQL holds the reverse proxy URL')
  t.equal((await storage.get(privateID!))?.url, privateURL, 'and the tunnel proxy URL')
})
