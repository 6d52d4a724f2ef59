/**
 * The layout the README describes: lib/ is the core and never reaches up into plugins/ or cli/
 * (the arrows run cli -> plugins -> lib).
 */
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Every .ts file under `dir` (relative to the repository root). */
function tsFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(root, join(e.parentPath, e.name)))
}

/** The relative module specifiers a file imports or re-exports, statically or with import(). */
function specifiers(source: string): string[] {
  const found: string[] = []
  for (const m of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.[^'"]+)['"]/g)) found.push(m[1] as string)
  return found
}

/** The files under lib/ whose imports land in one of `areas` (top-level folders). */
function importsInto(areas: string[]): string[] {
  const offending: string[] = []
  for (const file of tsFiles('lib')) {
    for (const spec of specifiers(readFileSync(join(root, file), 'utf8'))) {
      const target = relative(root, resolve(root, dirname(file), spec))
      if (areas.some((a) => target === a || target.startsWith(`${a}/`))) offending.push(`${file} imports ${spec}`)
    }
  }
  return offending
}

t.test('no file under lib/ imports from plugins/ or cli/', async (t) => {
  t.ok(tsFiles('lib').length > 20, 'the scan sees lib/')
  t.same(importsInto(['plugins', 'cli']), [])
})

t.test('the scan recognises the import forms it guards against', async (t) => {
  t.same(specifiers("import { a } from '../plugins/x.js'\nimport type { B } from \"../../cli/y.js\"\nexport * from './z.js'\nconst m = await import('../plugins/w.js')\nimport './side.js'"), ['../plugins/x.js', '../../cli/y.js', './z.js', '../plugins/w.js', './side.js'])
  t.same(specifiers("import { readFileSync } from 'node:fs'\nimport Fastify from 'fastify'"), [], 'packages are not relative imports')
})

t.test('the kite command lives in cli/, beside plugins/, and not in lib/', async (t) => {
  t.ok(tsFiles('cli').includes('cli/main.ts'), 'cli/main.ts')
  t.notOk(tsFiles('lib').some((f) => f.startsWith('lib/cli/')), 'no lib/cli')
})

/** Every folder of the repository, as `a/b/` (what git holds: no node_modules, dist or dot folders but .ci). */
function folders(dir = ''): string[] {
  const found: string[] = []
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === 'node_modules' || e.name === 'dist' || (e.name.startsWith('.') && e.name !== '.ci')) continue
    const path = `${dir}${e.name}/`
    found.push(path, ...folders(path))
  }
  return found.sort()
}

/** The folders the README's Layout section lists (first word of each line of its text block). */
function readmeFolders(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const block = /## Layout\n[\s\S]*?```text\n([\s\S]*?)```/.exec(readme)?.[1] ?? ''
  return block
    .split('\n')
    .map((l) => l.split(/\s+/)[0] as string)
    .filter((w) => w !== '')
    .sort()
}

t.test("the README's Layout lists every folder of the repository, and only those", async (t) => {
  const listed = readmeFolders()
  t.ok(listed.length > 20, 'the Layout block is found')
  const onDisk = folders()
  t.same(listed.filter((d) => !onDisk.includes(d)), [], 'every folder listed exists')
  t.same(onDisk.filter((d) => !listed.includes(d)), [], 'every folder is listed')
})
