/**
 * Versions and constraints as Kontrol queries use them (hashicorp/go-version):
 * `1.0.0` is an exact version; `>= 1.0, < 1.4`, `~> 1.1`, `!= 1.2.0` are
 * constraints, comma-separated, all of which must hold.
 */

interface Version {
  segments: number[]
  pre: string
}

const VERSION_RE = /^v?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/

/** Parses a version, or returns null when the text is not one. */
export function parseVersion(text: string): Version | null {
  const m = VERSION_RE.exec(text.trim())
  if (m === null) return null
  const segments = m[1]!.split('.').map(Number)
  if (segments.some((n) => !Number.isSafeInteger(n))) return null
  return { segments, pre: m[2] ?? '' }
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
  return a.pre < b.pre ? -1 : 1
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
  return (v) => compare(v, base) >= 0 && compare(v, ceiling) < 0 && (v.pre === '' || base.pre !== '')
}

/** Parses a constraint list; throws with a clear message when it does not parse. */
export function parseConstraint(text: string): (version: string) => boolean {
  const checks: Check[] = []
  for (const part of text.split(',')) {
    const m = /^\s*(~>|>=|<=|!=|=|>|<)?\s*(\S+)\s*$/.exec(part)
    const base = m === null ? null : parseVersion(m[2]!)
    if (m === null || base === null) throw new Error(`Malformed constraint: ${text}`)
    const op = m[1] ?? ''
    if (op === '~>') checks.push(pessimistic(base))
    else {
      const test = OPERATORS[op]!
      checks.push((v) => test(compare(v, base)))
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
