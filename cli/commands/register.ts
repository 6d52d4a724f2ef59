import { userInfo } from 'node:os'
import { kiteKeyPath, writeKiteKey } from '../../lib/kitekey.js'
import { EXIT, UsageError, type Command } from '../command.js'
import { connect, ownKiteKey, parse } from '../util.js'
import { kiteError } from '../../lib/errors.js'

export const registerCommand: Command = {
  usage: `kite register [--kontrol URL] [--username U]

Asks the Kontrol at URL for a kite.key (its registerMachine method, which a Kontrol
only offers to the machines it trusts) and writes it to $KITE_HOME/kite.key (mode 0600).
With a kite.key already there, it is sent along: a Kontrol that accepts it issues a fresh
one for its username, naming the Kontrol's current URL (use this when Kontrol moved).

  --kontrol URL    the Kontrol, e.g. http://127.0.0.1:4000/kite (default: KITE_KONTROL_URL,
                   else the kite.key's kontrolURL)
  --username U     the username to register (default: the kite.key's, else this OS user)`,
  async run({ args, env, out }) {
    const { values } = parse(args, { kontrol: { type: 'string' }, username: { type: 'string' } })
    const own = await ownKiteKey(env).catch(() => null)
    const kontrolURL = values.kontrol ?? (env.KITE_KONTROL_URL || undefined) ?? own?.claims.kontrolURL
    if (kontrolURL === undefined) throw new UsageError('--kontrol URL is required')
    const username = values.username ?? own?.claims.sub ?? userInfo().username
    if (own !== null) out('Already registered. Registering again...')
    const renew = own !== null && own.claims.sub === username
    const client = await connect(kontrolURL, { kite: { username }, auth: renew ? { type: 'kiteKey', key: own.key } : null })
    try {
      const key = await client.tell('registerMachine', { authType: 'kite-cli' })
      if (typeof key !== 'string') throw kiteError('KITE_ERR_CLI_NOT_KITEKEY')
      await writeKiteKey(key, kiteKeyPath(env))
    } finally {
      await client.close()
    }
    out(`Registered successfully: ${kiteKeyPath(env)}`)
    return EXIT.ok
  },
}
