import { kiteFromString, kiteToString, KITE_FIELDS } from '../../lib/protocol/kite.js'
import type { GetKitesResult, KiteWithToken, KontrolQuery } from '../../lib/protocol/kontrol.js'
import type { KiteKeyClaims } from '../../lib/kitekey.js'
import { EXIT, UsageError, type Command } from '../command.js'
import { connect, parse, requireKiteKey } from '../util.js'
import { kiteError } from '../../lib/errors.js'

/** `/user/env/name/version/region/hostname/id` (trailing parts optional) → a query; the username defaults to the kite.key's. */
export function queryFromPath(path: string | undefined, claims: KiteKeyClaims): KontrolQuery {
  const q: KontrolQuery = {}
  if (path !== undefined && path !== '') {
    if (!path.startsWith('/')) throw new UsageError('a query looks like /username/environment/name/version/region/hostname/id')
    const k = kiteFromString(path)
    for (const field of KITE_FIELDS) if (k[field] !== '') q[field] = k[field]
  }
  if (q.username === undefined) q.username = claims.sub
  return q
}

/** Finds kites through the kite.key's Kontrol (or `kontrolURL`). */
export async function findKites(env: NodeJS.ProcessEnv, query: KontrolQuery, kontrolURL?: string): Promise<KiteWithToken[]> {
  const { key, claims } = await requireKiteKey(env)
  const url = kontrolURL ?? (env.KITE_KONTROL_URL || undefined) ?? claims.kontrolURL
  if (url === undefined || url === '') throw kiteError('KITE_ERR_CLI_NO_KONTROL_URL')
  const client = await connect(url, { auth: { type: 'kiteKey', key }, kite: { username: claims.sub } })
  try {
    return ((await client.tell('getKites', { query })) as GetKitesResult).kites
  } finally {
    await client.close()
  }
}

export const queryCommand: Command = {
  usage: `kite query [/username/environment/name/version/region/hostname/id] [--kontrol URL] [--json]

Lists matching kites (trailing fields may be left out; the username defaults to the
kite.key's; the version may be a constraint such as "~> 1.0" — quote it).`,
  async run({ args, env, out }) {
    const { values, positionals } = parse(args, { kontrol: { type: 'string' }, json: { type: 'boolean' } })
    if (positionals.length > 1) throw new UsageError('one query at most')
    const { claims } = await requireKiteKey(env)
    const kites = await findKites(env, queryFromPath(positionals[0], claims), values.kontrol)
    if (values.json === true) {
      out(JSON.stringify(kites.map(({ kite, url }) => ({ kite, url }))))
      return EXIT.ok
    }
    if (kites.length === 0) out('no kites found')
    kites.forEach(({ kite, url }, i) => out(`${i + 1}\t${kiteToString(kite).slice(1)}\t${url}`))
    return EXIT.ok
  },
}
