import { kiteFromString, KITE_FIELDS, type KiteIdentity } from '../../lib/protocol/kite.js'

/**
 * Checks a token's `aud` against this kite (spec §5.4): the username must be
 * this kite's; environment and name must match when the audience names them.
 * Stricter than Go: version, region, hostname and id must match too when
 * named. The root audience `/` passes only with `allowRoot`. Returns the
 * problem, or null.
 */
export function checkAudience(aud: unknown, self: KiteIdentity, allowRoot: boolean): string | null {
  if (typeof aud !== 'string' || aud === '') return 'token has no audience'
  if (aud === '/') return allowRoot ? null : 'root audience "/" is not accepted by this kite'
  let target: KiteIdentity
  try {
    target = kiteFromString(aud)
  } catch {
    return `invalid audience: ${aud}`
  }
  if (target.username !== self.username) return `audience: username "${target.username}" not allowed (${aud})`
  for (const field of KITE_FIELDS) {
    if (field === 'username') continue
    if (target[field] !== '' && target[field] !== self[field]) {
      return `audience: ${field === 'name' ? 'kite' : field} "${target[field]}" not allowed (${aud})`
    }
  }
  return null
}
