/**
 * Start-up cost of `fastify-kite/client` against `ws` alone (the client's
 * only network dependency), measured in the same run: each of N rounds
 * starts one fresh `node` per subject, in alternating order, that imports the
 * subject and reports the time the import took and its RSS afterwards.
 * Prints medians and the ratios (goal ≤ 1.2× both). `fastify-kite` (the
 * plugins) is shown too, for scale. Run: `npm run bench:startup`.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROUNDS = Number(process.env.ROUNDS ?? 15)
const cwd = fileURLToPath(new URL('../..', import.meta.url))

const subjects: Record<string, string> = {
  'ws': 'ws',
  'fastify-kite/client': 'fastify-kite/client',
  'fastify-kite': 'fastify-kite',
}

function once(specifier: string): { ms: number; rssMB: number } {
  const code = `const t0 = performance.now(); await import(${JSON.stringify(specifier)}); const ms = performance.now() - t0; process.stdout.write(JSON.stringify({ ms, rssMB: process.memoryUsage().rss / 1048576 }))`
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd, encoding: 'utf8' })) as { ms: number; rssMB: number }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

// A bare node process, so that the import's own RSS can be shown apart from Node's.
const names = Object.keys(subjects)
const samples = new Map<string, { ms: number[]; rss: number[] }>(names.map((n) => [n, { ms: [], rss: [] }]))
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? names : [...names].reverse()
  for (const name of order) {
    const r = once(subjects[name] as string)
    const s = samples.get(name) as { ms: number[]; rss: number[] }
    s.ms.push(r.ms)
    s.rss.push(r.rssMB)
  }
}

const base = samples.get('ws') as { ms: number[]; rss: number[] }
const baseMs = median(base.ms)
const baseRss = median(base.rss)
console.log(`start-up, median of ${ROUNDS} fresh processes each (node ${process.version})`)
console.log('import                  time ms   RSS MB   time ×ws   RSS ×ws')
for (const name of names) {
  const s = samples.get(name) as { ms: number[]; rss: number[] }
  const ms = median(s.ms)
  const rss = median(s.rss)
  console.log(`${name.padEnd(22)} ${ms.toFixed(1).padStart(8)} ${rss.toFixed(1).padStart(8)} ${(ms / baseMs).toFixed(2).padStart(9)}× ${(rss / baseRss).toFixed(2).padStart(8)}×`)
}
