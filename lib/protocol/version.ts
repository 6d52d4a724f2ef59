import { kiteError } from '../errors.js'

/**
 * Versions and constraints as Kontrol queries use them (hashicorp/go-version):
 * `1.0.0` is an exact version; `>= 1.0, < 1.4`, `~> 1.1`, `!= 1.2.0` are
 * constraints, comma-separated, all of which must hold.
 */

interface Version {
  segments: number[]
  pre: string
}

// go-version's VersionRegexp: the prerelease may follow the numbers without a hyphen (`1.7rc2`).
const VERSION_RE = /^v?(\d+(?:\.\d+)*?)(?:-([0-9]+[0-9A-Za-z~-]*(?:\.[0-9A-Za-z~-]+)*)|-?([A-Za-z~-]+[0-9A-Za-z~-]*(?:\.[0-9A-Za-z~-]+)*))?(?:\+[0-9A-Za-z~-]+(?:\.[0-9A-Za-z~-]+)*)?$/

/** Parses a version, or returns null when the text is not one. */
export function parseVersion(text: string): Version | null {
  const m = VERSION_RE.exec(text.trim())
  if (m === null) return null
  const segments = m[1]!.split('.').map(Number)
  if (segments.some((n) => !Number.isSafeInteger(n))) return null
  return { segments, pre: m[2] ?? m[3] ?? '' }
}

/** One dot-separated prerelease part against another, exactly as go-version's `comparePart`. */
function comparePart(a: string, b: string): number {
  if (a === b) return 0
  const aNum = /^[+-]?\d+$/.test(a)
  const bNum = /^[+-]?\d+$/.test(b)
  // An absent part (the shorter prerelease): below a numeric part, above a word.
  if (a === '') return bNum ? -1 : 1
  if (b === '') return aNum ? 1 : -1
  if (aNum && !bNum) return -1
  if (!aNum && bNum) return 1
  if (!aNum && !bNum) return a > b ? 1 : -1
  return Number(a) > Number(b) ? 1 : -1
}

/** go-version's `comparePrereleases`: part by part, numbers as numbers (`rc.9` < `rc.10`). */
export function comparePrereleases(a: string, b: string): number {
  if (a === b) return 0
  const pa = a.split('.')
  const pb = b.split('.')
  const n = Math.max(pa.length, pb.length)
  for (let i = 0; i < n; i++) {
    const c = comparePart(pa[i] ?? '', pb[i] ?? '')
    if (c !== 0) return c
  }
  return 0
}

function compare(a: Version, b: Version): number {
  const n = Math.max(a.segments.length, b.segments.length, 3)
  for (let i = 0; i < n; i++) {
    const d = (a.segments[i] ?? 0) - (b.segments[i] ?? 0)
    if (d !== 0) return Math.sign(d)
  }
  if (a.pre === b.pre) return 0
  if (a.pre === '') return 1
  if (b.pre === '') return -1
  return comparePrereleases(a.pre, b.pre)
}

/** Compares two versions as go-version does: -1, 0 or 1; throws when one is not a version. */
export function compareVersions(a: string, b: string): number {
  const va = parseVersion(a)
  const vb = parseVersion(b)
  if (va === null || vb === null) throw kiteError('KITE_ERR_VERSION_MALFORMED', va === null ? a : b)
  return compare(va, vb)
}

function sameSegments(a: Version, b: Version): boolean {
  const n = Math.max(a.segments.length, b.segments.length, 3)
  for (let i = 0; i < n; i++) if ((a.segments[i] ?? 0) !== (b.segments[i] ?? 0)) return false
  return true
}

/**
 * go-version's `prereleaseCheck`: a constraint without a prerelease never
 * matches a prerelease version; one with a prerelease matches prereleases of
 * the same base version only.
 */
function prereleaseCheck(v: Version, c: Version): boolean {
  if (v.pre !== '' && c.pre !== '') return sameSegments(v, c)
  if (v.pre !== '' && c.pre === '') return false
  return true
}

type Check = (v: Version) => boolean

const OPERATORS: Record<string, (c: number) => boolean> = {
  '=': (c) => c === 0,
  '': (c) => c === 0,
  '!=': (c) => c !== 0,
  '>': (c) => c > 0,
  '<': (c) => c < 0,
  '>=': (c) => c >= 0,
  '<=': (c) => c <= 0,
}

function pessimistic(base: Version): Check {
  // ~> 1.2 allows >= 1.2, < 2.0; ~> 1.2.3 allows >= 1.2.3, < 1.3.0.
  const keep = Math.max(base.segments.length - 1, 1)
  const upper = base.segments.slice(0, keep)
  upper[keep - 1]! += 1
  const ceiling: Version = { segments: upper, pre: '' }
  return (v) => prereleaseCheck(v, base) && !(base.pre !== '' && v.pre === '') && compare(v, base) >= 0 && compare(v, ceiling) < 0
}

/** Parses a constraint list; throws with a clear message when it does not parse. */
export function parseConstraint(text: string): (version: string) => boolean {
  const checks: Check[] = []
  for (const part of text.split(',')) {
    const m = /^\s*(~>|>=|<=|!=|=|>|<)?\s*(\S+)\s*$/.exec(part)
    const base = m === null ? null : parseVersion(m[2]!)
    if (m === null || base === null) throw kiteError('KITE_ERR_CONSTRAINT_MALFORMED', text)
    const op = m[1] ?? ''
    if (op === '~>') checks.push(pessimistic(base))
    else {
      const test = OPERATORS[op]!
      // As go-version: = and != compare plainly; ordering operators apply prereleaseCheck.
      if (op === '' || op === '=' || op === '!=') checks.push((v) => test(compare(v, base)))
      else checks.push((v) => prereleaseCheck(v, base) && test(compare(v, base)))
    }
  }
  return (version) => {
    const v = parseVersion(version)
    return v !== null && checks.every((check) => check(v))
  }
}

/** True when `text` is a constraint rather than a plain version. */
export function isConstraint(text: string): boolean {
  return text !== '' && parseVersion(text) === null
}
