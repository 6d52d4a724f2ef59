import { userInfo } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { kiteServer } from '../../plugins/kite-server/index.js'
import { kiteAuth } from '../../plugins/kite-auth/index.js'
import { kontrol } from '../../plugins/kontrol/index.js'
import type { MachineAuthenticate } from '../../plugins/kontrol/methods.js'
import { kiteHome, kiteKeyPath, writeKiteKey } from '../../lib/kitekey.js'
import { EXIT, UsageError, type Command } from '../command.js'
import { ownKiteKey, parse } from '../util.js'
import { kiteError } from '../../lib/errors.js'

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

/** `registerMachine` policy: who may get a kite.key for the username they claim. */
function registrationPolicy(mode: string): MachineAuthenticate | undefined {
  if (mode === 'none') return undefined
  if (mode === 'any') return () => {}
  if (mode === 'local') {
    return (_type, req) => {
      if (!LOOPBACK.has(req.connection.remoteAddress)) throw kiteError('KITE_ERR_CLI_REGISTRATION_LOCAL')
    }
  }
  throw new UsageError('--registration must be none, local or any')
}

export const kontrolCommand: Command = {
  usage: `kite kontrol [--port P] [--host H] [--postgres URL] [--username U] [--publickeyfile F --privatekeyfile F]
             [--kontrol-url URL] [--registration local|none|any] [--json]

Starts a Kontrol. Kites and key pairs live in $KITE_HOME/kontrol.db (SQLite) unless
--postgres names a database (several Kontrols can share one). The first start creates
the key pair and, when $KITE_HOME has no kite.key, writes the operator's kite.key there,
so kites on this machine (Go kites too) register at once.

  --port P            port (default 4000; 0 picks a free one)
  --host H            address (default 127.0.0.1)
  --postgres URL      PostgreSQL storage, e.g. postgres://user@host:5432/db; a database
                      made by Go Kontrol's schema files is used as it is (schema kite)
  --username U        Kontrol's username, the issuer of its keys (default: this OS user);
                      beside a Go Kontrol, give Go's (its -username)
  --publickeyfile F   the key pair's PEM files (default: $KONTROL_PUBLICKEYFILE and
  --privatekeyfile F  $KONTROL_PRIVATEKEYFILE, as Go Kontrol reads them; else the newest
                      pair in storage, else a new one)
  --kontrol-url URL   the URL written into the kite.keys it issues (default: its own)
  --registration M    who may get a kite.key with "kite register": local (default: this
                      machine only), none, or any (the username is only claimed!)
  --json              print {url, publicKey, kiteKeyPath} as JSON`,
  async run({ args, env, out }) {
    const { values } = parse(args, {
      port: { type: 'string' },
      host: { type: 'string' },
      postgres: { type: 'string' },
      username: { type: 'string' },
      publickeyfile: { type: 'string' },
      privatekeyfile: { type: 'string' },
      'kontrol-url': { type: 'string' },
      registration: { type: 'string' },
      json: { type: 'boolean' },
    })
    const port = Number(values.port ?? 4000)
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be a port number')
    const home = kiteHome(env)
    const username = values.username ?? userInfo().username
    // Logs go to stderr, so that stdout carries only what scripts read.
    const app = Fastify({ logger: { level: env.KITE_LOG_LEVEL?.toLowerCase() === 'debug' ? 'debug' : 'warn', stream: process.stderr }, return503OnClosing: false })
    await app.register(kiteServer, { name: 'kontrol', version: '0.0.1', username })
    await app.register(kiteAuth, { kiteKey: false })
    const publicKeyFile = values.publickeyfile ?? (env.KONTROL_PUBLICKEYFILE || undefined)
    const privateKeyFile = values.privatekeyfile ?? (env.KONTROL_PRIVATEKEYFILE || undefined)
    if ((publicKeyFile === undefined) !== (privateKeyFile === undefined)) throw new UsageError('give both key files (--publickeyfile and --privatekeyfile, or KONTROL_PUBLICKEYFILE and KONTROL_PRIVATEKEYFILE), or neither')
    await app.register(kontrol, {
      storage: values.postgres ?? `sqlite:${join(home, 'kontrol.db')}`,
      keyPair: { publicKeyFile, privateKeyFile },
      kontrolURL: values['kontrol-url'],
      machineAuthenticate: registrationPolicy(values.registration ?? 'local'),
    })
    await app.listen({ port, host: values.host ?? '127.0.0.1' })
    const url = app.kontrol.url
    let wrote = ''
    if ((await ownKiteKey(env)) === null) {
      wrote = kiteKeyPath(env)
      await writeKiteKey(app.kontrol.service.issueKiteKey(username), wrote)
    }
    const publicKey = app.kontrol.keys.current.public
    if (values.json === true) out(JSON.stringify({ url, publicKey, kiteKeyPath: wrote === '' ? null : wrote }))
    else {
      out(`kontrol listening at ${url}`)
      out(publicKey)
      if (wrote !== '') out(`wrote the operator's kite.key to ${wrote}`)
    }
    await new Promise<void>((resolve) => {
      const stop = (): void => resolve()
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    await app.close()
    return EXIT.ok
  },
}
