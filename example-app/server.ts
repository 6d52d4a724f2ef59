import { buildMathApp } from './app.js'

/** Starts the example app on HOST:PORT (defaults 127.0.0.1:3636). */
const port = Number(process.env.PORT ?? 3636)
const host = process.env.HOST ?? '127.0.0.1'
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, got ${process.env.PORT}`)
  process.exit(2)
}

const app = await buildMathApp()
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.log.info({ signal }, 'closing')
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  })
}
try {
  const address = await app.listen({ port, host })
  app.log.info(`math kite at ${address}${app.kite.prefix} (try: GET ${address}/square/4)`)
} catch (err) {
  app.log.error({ err }, 'cannot start')
  process.exit(1)
}
