import { userInfo } from 'node:os'
import { findKiteKey, kiteKeyPath, writeKiteKey } from '../lib/kitekey.js'
import { buildMathApp } from './app.js'
import { buildKontrol } from './kontrol.js'

/**
 * `npm start`: an embedded Kontrol on KONTROL_PORT (default 4000) and the
 * `math` kite on PORT (default 3636), both on HOST (default 127.0.0.1),
 * math registered with the Kontrol. KONTROL_STORAGE picks the storage
 * (default SQLite in $KITE_HOME; a postgres:// URL for a cluster).
 */
function port(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? (name === 'PORT' ? process.env.KITE_PORT : undefined) ?? fallback)
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    console.error(`${name} must be a port number, got ${process.env[name]}`)
    process.exit(2)
  }
  return value
}

const host = process.env.HOST ?? process.env.KITE_IP ?? '127.0.0.1'
const username = process.env.KITE_USERNAME ?? userInfo().username
const kontrolApp = await buildKontrol({ username, storage: process.env.KONTROL_STORAGE })
let mathApp: Awaited<ReturnType<typeof buildMathApp>> | null = null

async function stop(code: number): Promise<never> {
  await mathApp?.close()
  await kontrolApp.close()
  process.exit(code)
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stop(0))

try {
  await kontrolApp.listen({ port: port('KONTROL_PORT', 4000), host })
  // This machine's kite.key comes from the embedded Kontrol when there is none yet,
  // so that `kite query` and `kite tell` work at once.
  const kept = await findKiteKey()
  if (kept === null) await writeKiteKey(kontrolApp.kontrol.service.issueKiteKey(username), kiteKeyPath())
  else if (kept.claims.kontrolURL !== undefined && kept.claims.kontrolURL !== kontrolApp.kontrol.url) {
    kontrolApp.log.warn(
      { kiteKey: kept.path, keyKontrol: kept.claims.kontrolURL, embeddedKontrol: kontrolApp.kontrol.url },
      `the kept kite.key names the Kontrol at ${kept.claims.kontrolURL}, not the embedded one at ${kontrolApp.kontrol.url}; the kite command will look there. Refresh it: npx kite register --kontrol ${kontrolApp.kontrol.url}`,
    )
  }
  mathApp = await buildMathApp({ kontrol: { url: kontrolApp.kontrol.url, kiteKey: kontrolApp.kontrol.service.issueKiteKey(username) } })
  const address = await mathApp.listen({ port: port('PORT', 3636), host })
  await mathApp.kontrolRegister.ready
  mathApp.log.info(`math kite at ${address}${mathApp.kite.prefix}, registered with kontrol at ${kontrolApp.kontrol.url} (try: curl ${address}/square/4)`)
} catch (err) {
  console.error(`cannot start: ${(err as Error).message}`)
  await stop(1)
}
