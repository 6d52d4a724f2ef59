import { kiteError, usageError } from '../errors.js'
import { hostname, randomUUID } from '../platform.js'

/** A kite's identity: the 7 fields every kite has (spec §6.1). */
export interface KiteIdentity {
  name: string
  username: string
  id: string
  environment: string
  region: string
  version: string
  hostname: string
}

/** The fields, from general to specific, in the order of the `/a/b/c/…` string form. */
export const KITE_FIELDS = ['username', 'environment', 'name', 'version', 'region', 'hostname', 'id'] as const
export type KiteField = (typeof KITE_FIELDS)[number]

/** The `/username/environment/name/version/region/hostname/id` form. */
export function kiteToString(k: KiteIdentity): string {
  return `/${k.username}/${k.environment}/${k.name}/${k.version}/${k.region}/${k.hostname}/${k.id}`
}

/** Parses the `/a/b/…` form; missing trailing parts are empty, the last keeps any further `/`. */
export function kiteFromString(s: string): KiteIdentity {
  if (!s.startsWith('/')) throw kiteError('KITE_ERR_IDENTITY_INVALID', `invalid kite path: must start with "/": ${s}`)
  const parts = s.slice(1).split('/')
  const rest = parts.length > 7 ? [...parts.slice(0, 6), parts.slice(6).join('/')] : parts
  const k = emptyKite()
  KITE_FIELDS.forEach((field, i) => {
    k[field] = rest[i] ?? ''
  })
  return k
}

export function emptyKite(): KiteIdentity {
  return { name: '', username: '', id: '', environment: '', region: '', version: '', hostname: '' }
}

/** Checks a full identity as Kontrol does: every field set and free of `/`. Returns the problem, or null. */
export function validateKite(k: KiteIdentity): string | null {
  for (const field of KITE_FIELDS) {
    const value = k[field]
    if (value === '') return `Empty Kite field: ${field}`
    if (value.includes('/')) return `Field "${field}" must not contain '/'`
  }
  return null
}

/**
 * Reads a claimed identity from untrusted input: an object whose fields are
 * strings (missing ones become empty). Returns null for anything else.
 */
export function kiteFromWire(value: unknown): KiteIdentity | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null
  const v = value as Record<string, unknown>
  const k = emptyKite()
  for (const field of KITE_FIELDS) {
    const f = v[field]
    if (f === undefined || f === null) continue
    if (typeof f !== 'string' || f.length > 1024) return null
    k[field] = f
  }
  return k
}

/** Options for a local kite's identity; what is left out gets the G kite's defaults. */
export interface LocalKiteOptions {
  name: string
  version: string
  username?: string
  environment?: string
  region?: string
  hostname?: string
  id?: string
}

/** Builds the local kite's identity (G defaults: "unknown", os hostname, a fresh UUID). */
export function localKite(o: LocalKiteOptions): KiteIdentity {
  if (typeof o.name !== 'string' || o.name === '' || o.name.includes('/')) {
    throw usageError('KITE_ERR_IDENTITY_INVALID', 'kite name must be a non-empty string without "/"')
  }
  if (typeof o.version !== 'string' || o.version.split('.').length !== 3) {
    throw usageError('KITE_ERR_IDENTITY_INVALID', `kite version must have 3 dot-separated parts, got ${String(o.version)}`)
  }
  const k: KiteIdentity = {
    name: o.name,
    username: o.username ?? 'unknown',
    id: o.id ?? randomUUID(),
    environment: o.environment ?? 'unknown',
    region: o.region ?? 'unknown',
    version: o.version,
    hostname: o.hostname ?? hostname(),
  }
  for (const field of KITE_FIELDS) {
    if (k[field] === '' || k[field].includes('/')) throw usageError('KITE_ERR_IDENTITY_INVALID', `kite ${field} must be non-empty and free of "/"`)
  }
  return k
}
