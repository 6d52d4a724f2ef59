import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { KiteClient, KiteClientOptions } from '../lib/client/client.js'
import { cliTls } from './tls.js'
import { decodeKiteKey, findKiteKey, kiteKeyPath, type KiteKeyClaims } from '../lib/kitekey.js'
import { UsageError } from './command.js'
import { kiteError } from '../lib/errors.js'

type OptionSpec = Record<string, { type: 'string' | 'boolean' }>

/** Parsed options: strings for string options, booleans for flags. */
export interface Parsed<T extends OptionSpec> {
  values: { [K in keyof T]?: T[K]['type'] extends 'boolean' ? boolean : string }
  positionals: string[]
}

/** parseArgs with strict options; unknown options become UsageErrors. */
export function parse<T extends OptionSpec>(args: string[], options: T): Parsed<T> {
  try {
    return parseArgs({ args, options: options as NonNullable<ParseArgsConfig['options']>, allowPositionals: true, strict: true }) as unknown as Parsed<T>
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

/** The kite.key of $KITE_HOME, or null. */
export async function ownKiteKey(env: NodeJS.ProcessEnv): Promise<{ key: string; claims: KiteKeyClaims; path: string } | null> {
  return findKiteKey(kiteKeyPath(env))
}

/** The kite.key of $KITE_HOME; fails with a clear message when there is none. */
export async function requireKiteKey(env: NodeJS.ProcessEnv): Promise<{ key: string; claims: KiteKeyClaims }> {
  const found = await ownKiteKey(env)
  if (found === null) throw kiteError('KITE_ERR_CLI_NO_KITEKEY', kiteKeyPath(env))
  return { key: found.key, claims: decodeKiteKey(found.key) }
}

/** A connected client, closed by the caller. */
export async function connect(url: string, options: KiteClientOptions): Promise<KiteClient> {
  // Loaded here, not at the top: commands that make no client (showkey, help) start without it.
  const { KiteClient } = await import('../lib/client/client.js')
  const client = new KiteClient(url, { connectTimeout: 10000, tls: cliTls(), ...options, kite: { name: 'kite-cli', version: '1.0.0', ...options.kite } })
  try {
    await client.connect()
  } catch (err) {
    await client.close()
    throw err
  }
  return client
}

/** A number of milliseconds from an option, or the default. */
export function millis(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a number of milliseconds`)
  return n
}
