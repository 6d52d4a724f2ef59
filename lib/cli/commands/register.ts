import { userInfo } from 'node:os'
import { kiteKeyPath, writeKiteKey } from '../../kitekey.js'
import { EXIT, UsageError, type Command } from '../command.js'
import { connect, ownKiteKey, parse } from '../util.js'

export const registerCommand: Command = {
  name: 'register',
  summary: 'get a kite.key from a Kontrol',
  usage: `kite register --kontrol URL [--username U]

Asks the Kontrol at URL for a kite.key (its registerMachine method, which a Kontrol
only offers to the machines it trusts) and writes it to $KITE_HOME/kite.key (mode 0600).

  --kontrol URL    the Kontrol, e.g. http://127.0.0.1:4000/kite
  --username U     the username to register (default: this OS user)`,
  async run({ args, env, out }) {
    const { values } = parse(args, { kontrol: { type: 'string' }, username: { type: 'string' } })
    if (values.kontrol === undefined) throw new UsageError('--kontrol URL is required')
    const username = values.username ?? userInfo().username
    if ((await ownKiteKey(env)) !== null) out('Already registered. Registering again...')
    const client = await connect(values.kontrol, { kite: { username } })
    try {
      const key = await client.tell('registerMachine', { authType: 'kite-cli' })
      if (typeof key !== 'string') throw new Error('kontrol answered with something that is not a kite.key')
      await writeKiteKey(key, kiteKeyPath(env))
    } finally {
      await client.close()
    }
    out(`Registered successfully: ${kiteKeyPath(env)}`)
    return EXIT.ok
  },
}
