import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { FastifyBaseLogger } from 'fastify'
import { KiteError, kiteError } from '../../lib/errors.js'
import { keyFingerprint } from '../kite-auth/trusted-keys.js'
import type { KeyPairRecord, KontrolStorage } from './storage/storage.js'

/** Where Kontrol's key pair comes from: PEM text, PEM files, or (neither) storage, generated on first start. */
export interface KeyPairSource {
  publicKey?: string
  privateKey?: string
  publicKeyFile?: string
  privateKeyFile?: string
}

function generatePair(): { public: string; private: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  return { public: publicKey.trim(), private: privateKey.trim() }
}

/** Throws KITE_ERR_KONTROL_KEY_PAIR unless `priv` is an RSA private key whose public half is `pub`. */
function checkHalves(pub: string, priv: string): void {
  let fingerprint: string
  try {
    fingerprint = keyFingerprint(pub)
  } catch (err) {
    throw kiteError('KITE_ERR_KONTROL_KEY_PAIR', `the public key: ${err instanceof KiteError ? err.message : 'unreadable'}`)
  }
  let derived: string
  try {
    derived = createPublicKey(createPrivateKey(priv)).export({ type: 'spki', format: 'der' }).toString('base64')
  } catch {
    throw kiteError('KITE_ERR_KONTROL_KEY_PAIR', 'the private key is not a PEM private key')
  }
  if (derived !== fingerprint) throw kiteError('KITE_ERR_KONTROL_KEY_PAIR', 'the private key is not the public key\'s other half')
}

/** How often a live key pair is re-read from storage (another Kontrol may retire it). */
const RECHECK_MS = 10_000

/**
 * True when a stored pair can sign and verify: an RSA public key and a
 * readable private key. Go Kontrol may store a placeholder pair
 * (`kontrol-self`) for its own registration; such pairs are skipped.
 */
function usable(pair: { public: string; private: string }): boolean {
  try {
    keyFingerprint(pair.public)
    createPrivateKey(pair.private)
    return true
  } catch {
    return false
  }
}

/**
 * Kontrol's RS256 key pairs. The current pair signs new kite.keys and
 * tokens; retired pairs stay readable so that their kite.keys can be
 * recognised and re-issued (spec §7.6).
 */
export class KontrolKeys {
  private byId = new Map<string, KeyPairRecord>()
  /** When each live pair was last read from storage. */
  private checkedAt = new Map<string, number>()
  /** Key-material fingerprint → pair id, computed once per pair. */
  private idByFingerprint = new Map<string, string>()
  /** Ids of stored pairs that cannot sign (placeholders): treated as unknown. */
  private unusable = new Set<string>()

  private constructor(
    private readonly storage: KontrolStorage,
    public current: KeyPairRecord,
    private readonly log: FastifyBaseLogger,
    private readonly clock: () => number,
  ) {}

  /** Loads the configured pair (adding it to storage if new), or the newest stored one, or generates one. */
  static async load(storage: KontrolStorage, source: KeyPairSource, log: FastifyBaseLogger, clock: () => number = Date.now): Promise<KontrolKeys> {
    const pub = source.publicKey ?? (source.publicKeyFile !== undefined ? await readFile(source.publicKeyFile, 'utf8') : undefined)
    const priv = source.privateKey ?? (source.privateKeyFile !== undefined ? await readFile(source.privateKeyFile, 'utf8') : undefined)
    if ((pub === undefined) !== (priv === undefined)) throw kiteError('KITE_ERR_KONTROL_KEY_PAIR', 'both a public and a private key are needed, or neither')
    let current: KeyPairRecord | null = null
    if (pub !== undefined && priv !== undefined) {
      checkHalves(pub, priv)
      current = await storage.getKeyPairByPublic(pub.trim())
      if (current === null) {
        current = { id: randomUUID(), public: pub.trim(), private: priv.trim(), deletedAt: null }
        await storage.addKeyPair(current)
      }
    } else {
      const live = (await storage.listKeyPairs()).filter((k) => k.deletedAt === null && usable(k))
      current = live.at(-1) ?? null
      if (current === null) {
        current = { id: randomUUID(), ...generatePair(), deletedAt: null }
        await storage.addKeyPair(current)
        log.info({ keyId: current.id }, 'kontrol: generated a new key pair')
      }
    }
    const keys = new KontrolKeys(storage, current, log, clock)
    for (const k of await storage.listKeyPairs()) keys.remember(k)
    return keys
  }

  /** Keeps a stored pair; false (and logged once) when it cannot sign. */
  private remember(pair: KeyPairRecord): boolean {
    if (this.unusable.has(pair.id)) return false
    if (!this.byId.has(pair.id)) {
      if (!usable(pair)) {
        this.unusable.add(pair.id)
        this.log.warn({ keyId: pair.id }, 'kontrol: a stored key pair is not an RSA key pair; ignored')
        return false
      }
      this.idByFingerprint.set(keyFingerprint(pair.public), pair.id)
    }
    this.byId.set(pair.id, pair)
    return true
  }

  /**
   * Reads every stored pair again; returns the ones not known before (added
   * by another Kontrol, Go's included), so that they can be trusted.
   */
  async refresh(): Promise<KeyPairRecord[]> {
    const added: KeyPairRecord[] = []
    for (const k of await this.storage.listKeyPairs()) {
      const known = this.byId.has(k.id)
      if (this.remember(k) && !known) added.push(k)
    }
    return added
  }

  /** Every pair known (retired ones too), for trust. */
  all(): KeyPairRecord[] {
    return [...this.byId.values()]
  }

  /** The pair with this id; reads storage for pairs another Kontrol added. */
  async get(id: string): Promise<KeyPairRecord | null> {
    if (this.unusable.has(id)) return null
    const known = this.byId.get(id)
    // A retired pair stays retired; a live one is re-read now and then, in case another Kontrol retired it.
    if (known !== undefined && (known.deletedAt !== null || this.clock() - (this.checkedAt.get(id) ?? 0) < RECHECK_MS)) return known
    const stored = await this.storage.getKeyPair(id)
    if (stored !== null) {
      if (!this.remember(stored)) return null
      this.checkedAt.set(id, this.clock())
    }
    return stored ?? known ?? null
  }

  /** The pair whose public key is `pem` (as a kite.key's kontrolKey claim gives it). */
  async byPublic(pem: string): Promise<KeyPairRecord | null> {
    let fingerprint: string
    try {
      fingerprint = keyFingerprint(pem)
    } catch {
      return null
    }
    const known = this.idByFingerprint.get(fingerprint)
    if (known !== undefined) return (await this.get(known)) ?? this.byId.get(known)!
    const stored = await this.storage.getKeyPairByPublic(pem.trim())
    if (stored !== null && !this.remember(stored)) return null
    return stored
  }

  /** Retires a pair; retiring the current one makes a new current pair. */
  async retire(id: string): Promise<void> {
    await this.storage.retireKeyPair(id)
    const k = await this.storage.getKeyPair(id)
    if (k !== null) this.remember(k)
    if (id === this.current.id) {
      const next: KeyPairRecord = { id: randomUUID(), ...generatePair(), deletedAt: null }
      await this.storage.addKeyPair(next)
      this.remember(next)
      this.current = next
      this.log.info({ retired: id, keyId: next.id }, 'kontrol: key pair rotated')
    }
  }
}
