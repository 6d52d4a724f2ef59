import { createVerify } from 'node:crypto'
import { KiteError } from '../../lib/errors.js'
import type { KiteKeyClaims } from '../../lib/kitekey.js'
import { EXIT, type Command } from '../command.js'
import { connect, parse, requireKiteKey } from '../util.js'

const ORDER = ['sub', 'iss', 'kontrolURL', 'aud', 'iat', 'jti', 'kontrolKey'] as const

/** Checks the kite.key's signature against the key it names (a self-consistency check). */
function selfConsistent(key: string, claims: KiteKeyClaims): boolean {
  if (claims.kontrolKey === undefined) return false
  const [h, p, s] = key.split('.') as [string, string, string]
  try {
    return createVerify('RSA-SHA256').update(`${h}.${p}`).verify(claims.kontrolKey, Buffer.from(s, 'base64url'))
  } catch {
    return false
  }
}

/** Marks a problem that is not the key's fault. */
const UNREACHABLE = '\u0000'

/** Asks the kite.key's Kontrol whether it accepts it; returns null when it does, else why not. */
async function checkWithKontrol(key: string, claims: KiteKeyClaims): Promise<string | null> {
  if (claims.kontrolURL === undefined || claims.kontrolURL === '') return 'the kite.key names no kontrolURL'
  let client
  try {
    client = await connect(claims.kontrolURL, { auth: { type: 'kiteKey', key }, kite: { username: claims.sub }, timeout: 10000 })
  } catch (err) {
    return `${UNREACHABLE}Kontrol at ${claims.kontrolURL} does not answer; the key's signature is valid (${(err as Error).message}). If Kontrol moved, run "kite register --kontrol NEW_URL" to refresh the kite.key`
  }
  try {
    const current = await client.tell('getKey')
    if (typeof current === 'string' && current.trim() !== claims.kontrolKey?.trim()) return `kontrol at ${claims.kontrolURL} accepts it but has rotated its key: run "kite register" for a fresh kite.key`
    return null
  } catch (err) {
    const e = err as KiteError
    return `kontrol at ${claims.kontrolURL} refuses this kite.key: ${e.message}`
  } finally {
    await client.close()
  }
}

export const showkeyCommand: Command = {
  usage: `kite showkey [--verify] [--json]

Prints the claims of $KITE_HOME/kite.key. With --verify, checks its signature against
the key it names and asks its Kontrol whether it accepts it; says why when it does not
(exit 1).`,
  async run({ args, env, out, err }) {
    const { values } = parse(args, { verify: { type: 'boolean' }, json: { type: 'boolean' } })
    const { key, claims } = await requireKiteKey(env)
    let problem: string | null = null
    if (values.verify === true) {
      problem = selfConsistent(key, claims) ? await checkWithKontrol(key, claims) : 'its signature does not match the kontrolKey it names (the file is corrupt or forged)'
    }
    if (values.json === true) {
      out(JSON.stringify(values.verify === true ? { claims, valid: problem === null, kontrolUnreachable: problem?.startsWith(UNREACHABLE) === true, problem: problem?.replace(UNREACHABLE, '') ?? null } : { claims }))
    } else {
      for (const name of ORDER) if (claims[name] !== undefined) out(`${name.padEnd(15)}${String(claims[name])}`)
      if (values.verify === true && problem === null) out('kite.key is valid and accepted by its kontrol')
    }
    if (problem !== null && problem.startsWith(UNREACHABLE)) {
      err(`kite.key could not be checked: ${problem.slice(1)}`)
      return EXIT.failed
    }
    if (problem !== null) {
      err(`kite.key is not valid: ${problem}`)
      return EXIT.failed
    }
    return EXIT.ok
  },
}
