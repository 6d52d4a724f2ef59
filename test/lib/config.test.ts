import t from 'tap'
import { join } from 'node:path'
import { defaultConfig, fromEnv, loadConfig, parseGoDuration } from '../../lib/config.js'
import { writeKiteKey } from '../../lib/kitekey.js'
import { makeKontrol } from '../helpers/tokens.js'

t.test('Go durations', async (t) => {
  t.equal(parseGoDuration('15s'), 15000)
  t.equal(parseGoDuration('300ms'), 300)
  t.equal(parseGoDuration('1m30s'), 90000)
  t.equal(parseGoDuration('1.5h'), 5400000)
  t.equal(parseGoDuration('0'), 0)
  for (const bad of ['15', 'abc', '10 s', '5x', '']) t.throws(() => parseGoDuration(bad), bad)
})

t.test('the KITE_* variables', async (t) => {
  t.same(fromEnv({}), {})
  t.same(
    fromEnv({ KITE_USERNAME: 'u', KITE_ENVIRONMENT: 'e', KITE_REGION: 'r', KITE_KONTROL_URL: 'http://k/kite', KITE_TRANSPORT: 'XHRPolling', KITE_IP: '127.0.0.1', KITE_PORT: '3636', KITE_TIMEOUT: '30s', KITE_HANDSHAKE_TIMEOUT: '2s', KITE_VERIFY_TTL: '1m', KITE_LOG_LEVEL: 'warning', KITE_HOME: '/h' }),
    { username: 'u', environment: 'e', region: 'r', kontrolURL: 'http://k/kite', ip: '127.0.0.1', home: '/h', transport: 'xhr-polling', port: 3636, timeoutMs: 30000, handshakeTimeoutMs: 2000, verifyTTLMs: 60000, logLevel: 'warn' },
  )
  t.equal(fromEnv({ KITE_TRANSPORT: 'WebSocket' }).transport, 'sockjs')
  t.equal(fromEnv({ KITE_TRANSPORT: 'auto' }).transport, 'auto')
  t.throws(() => fromEnv({ KITE_TRANSPORT: 'websocket' }), { code: 'KITE_ERR_CONFIG_INVALID', message: /KITE_TRANSPORT: must be WebSocket, XHRPolling or auto/ })
  t.throws(() => fromEnv({ KITE_TIMEOUT: '30' }), { message: /KITE_TIMEOUT: not a duration/ }, 'a bare number is an error, not silently ignored as in Go')
  t.throws(() => fromEnv({ KITE_PORT: '70000' }), { message: /KITE_PORT/ })
  t.throws(() => fromEnv({ KITE_LOG_LEVEL: 'LOUD' }), { message: /KITE_LOG_LEVEL/ })
})

t.test('precedence: options > environment > kite.key > defaults', async (t) => {
  const kontrol = makeKontrol('kontrol-user')
  const home = t.testdir()
  const key = kontrol.kiteKey('keyuser', { jti: 'key-id-1', kontrolURL: 'http://from-key:4000/kite' })
  await writeKiteKey(key, join(home, 'kite.key'))
  const fromKey = await loadConfig({ env: { KITE_HOME: home } })
  t.match(fromKey, { username: 'keyuser', kontrolUser: 'kontrol-user', keyId: 'key-id-1', kontrolURL: 'http://from-key:4000/kite', kiteKey: key, environment: 'unknown', timeoutMs: 15000, home })
  t.equal(fromKey.kontrolKey, kontrol.publicKey.trim())
  const fromEnvironment = await loadConfig({ env: { KITE_HOME: home, KITE_USERNAME: 'envuser', KITE_KONTROL_URL: 'http://from-env/kite' } })
  t.match(fromEnvironment, { username: 'envuser', kontrolURL: 'http://from-env/kite', kontrolUser: 'kontrol-user' })
  const fromOptions = await loadConfig({ env: { KITE_HOME: home, KITE_USERNAME: 'envuser' }, options: { username: 'optuser', environment: undefined } })
  t.match(fromOptions, { username: 'optuser', environment: 'unknown' })
  const none = await loadConfig({ env: { KITE_HOME: join(home, 'empty') } })
  t.same({ ...none, home: '' }, { ...defaultConfig })
  const skipped = await loadConfig({ env: { KITE_HOME: home }, readKiteKey: false })
  t.equal(skipped.username, 'unknown')
})
