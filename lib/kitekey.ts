import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { KiteError, kiteError } from './errors.js'

/** The claims of a kite.key (spec §5.6): issued by Kontrol, never expiring. */
export interface KiteKeyClaims {
  /** Kontrol's username (the issuer). */
  iss: string
  /** The username this key is for. */
  sub: string
  /** Issued at, seconds since the epoch. */
  iat?: number
  /** The key's id (a UUID). */
  jti?: string
  /** Where Kontrol is. */
  kontrolURL?: string
  /** PEM public key of the Kontrol key pair that signed this kite.key. */
  kontrolKey?: string
  [claim: string]: unknown
}

/** The folder of kite.key: `$KITE_HOME`, or `~/.kite`. */
export function kiteHome(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.KITE_HOME
  return home !== undefined && home !== '' ? home : join(homedir(), '.kite')
}

/** Where kite.key is: `$KITE_HOME/kite.key`, default `~/.kite/kite.key`. */
export function kiteKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(kiteHome(env), 'kite.key')
}

/** The largest kite.key accepted (a real one is about 1.5 KiB). */
export const MAX_KITE_KEY_BYTES = 16 * 1024

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  if (!/^[A-Za-z0-9_-]+$/.test(segment)) throw kiteError('KITE_ERR_JWT_MALFORMED', `${what} is not base64url`)
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
  } catch {
    throw kiteError('KITE_ERR_JWT_MALFORMED', `${what} is not JSON`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw kiteError('KITE_ERR_JWT_MALFORMED', `${what} is not a JSON object`)
  return value as Record<string, unknown>
}

/** A JWT's header and claims, read without checking anything. Throws on a malformed token. */
export function decodeJwt(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  if (typeof token !== 'string' || token.length === 0) throw kiteError('KITE_ERR_JWT_MALFORMED', 'empty token')
  if (token.length > MAX_KITE_KEY_BYTES) throw kiteError('KITE_ERR_JWT_MALFORMED', 'token too large')
  const parts = token.split('.')
  if (parts.length !== 3) throw kiteError('KITE_ERR_JWT_MALFORMED', 'token must have 3 parts')
  return { header: decodeSegment(parts[0]!, 'header'), claims: decodeSegment(parts[1]!, 'payload') }
}

/** Decodes a kite.key's claims (not its signature; kite-auth does that) with clear errors. */
export function decodeKiteKey(token: string): KiteKeyClaims {
  let claims: Record<string, unknown>
  try {
    claims = decodeJwt(token.trim()).claims
  } catch (err) {
    throw kiteError('KITE_ERR_KITEKEY_MALFORMED', (err as Error).message)
  }
  for (const claim of ['iss', 'sub'] as const) {
    if (typeof claims[claim] !== 'string' || claims[claim] === '') throw kiteError('KITE_ERR_KITEKEY_MALFORMED', `missing claim ${claim}`)
  }
  for (const claim of ['jti', 'kontrolURL', 'kontrolKey'] as const) {
    if (claims[claim] !== undefined && typeof claims[claim] !== 'string') throw kiteError('KITE_ERR_KITEKEY_MALFORMED', `claim ${claim} must be a string`)
  }
  if (claims.iat !== undefined && typeof claims.iat !== 'number') throw kiteError('KITE_ERR_KITEKEY_MALFORMED', 'claim iat must be a number')
  return claims as KiteKeyClaims
}

/** Reads the kite.key at `path` (default: kiteKeyPath()); trims whitespace. */
export async function readKiteKey(path = kiteKeyPath()): Promise<string> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw kiteError('KITE_ERR_KITEKEY_MISSING', path)
    throw kiteError('KITE_ERR_KITEKEY_UNREADABLE', path, code ?? (err as Error).message)
  }
  const key = text.trim()
  if (key.length === 0) throw kiteError('KITE_ERR_KITEKEY_MALFORMED', `${path} is empty`)
  if (key.length > MAX_KITE_KEY_BYTES) throw kiteError('KITE_ERR_KITEKEY_MALFORMED', `${path} is too large`)
  decodeKiteKey(key)
  return key
}

/** Reads and decodes the kite.key, or returns null when there is none (other problems still throw). */
export async function findKiteKey(path = kiteKeyPath()): Promise<{ key: string; claims: KiteKeyClaims; path: string } | null> {
  try {
    const key = await readKiteKey(path)
    return { key, claims: decodeKiteKey(key), path }
  } catch (err) {
    if (err instanceof KiteError && err.code === 'KITE_ERR_KITEKEY_MISSING') return null
    throw err
  }
}

/**
 * Writes a kite.key: the folder is made 0700, the file 0600 (replaced
 * atomically, so a reader never sees half a key).
 */
export async function writeKiteKey(key: string, path = kiteKeyPath()): Promise<void> {
  decodeKiteKey(key)
  const dir = dirname(path)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700)
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, `${key.trim()}\n`, { mode: 0o600 })
  await chmod(tmp, 0o600)
  await rename(tmp, path)
}
