#!/usr/bin/env node
// Builds `fastify-kite/browser`: lib/browser/index.ts bundled by esbuild into
// one minified ES module, dist/browser/kite.js. A source file `x.ts` with a
// sibling `x.browser.ts` is replaced by it; `node:events` becomes a small
// emitter and `secure-json-parse` a JSON.parse that drops `__proto__` keys. Any other Node built-in, or `ws`/`pino`, fails the build: the
// browser client must not pull them in. Prints the size (min and gzip).
import { build } from 'esbuild'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const outfile = join(root, 'dist/browser/kite.js')

/** @type {import('esbuild').Plugin} */
const browserSwap = {
  name: 'browser-swap',
  setup(b) {
    b.onResolve({ filter: /^node:events$/ }, () => ({ path: join(root, 'lib/browser/events.ts') }))
    b.onResolve({ filter: /^secure-json-parse$/ }, () => ({ path: join(root, 'lib/browser/secure-json.ts') }))
    b.onResolve({ filter: /^(node:|ws$|pino$)/ }, (args) => ({ errors: [{ text: `${args.path} must not reach the browser build (imported by ${args.importer})` }] }))
    b.onResolve({ filter: /^\.\.?\/.*\.js$/ }, (args) => {
      const ts = resolve(args.resolveDir, args.path.replace(/\.js$/, '.ts'))
      const swap = ts.replace(/\.ts$/, '.browser.ts')
      if (existsSync(swap)) return { path: swap }
      if (existsSync(ts)) return { path: ts }
      return undefined
    })
  },
}

await build({
  entryPoints: [join(root, 'lib/browser/index.ts')],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  legalComments: 'none',
  charset: 'utf8',
  plugins: [browserSwap],
  // Fields set in the constructor, not declared again on the class: the same objects, a smaller bundle.
  tsconfigRaw: { compilerOptions: { useDefineForClassFields: false } },
  logLevel: 'warning',
})

const code = readFileSync(outfile)
const gz = gzipSync(code, { level: 9 }).length
console.log(`browser bundle: dist/browser/kite.js ${(code.length / 1024).toFixed(1)} kB min, ${(gz / 1024).toFixed(1)} kB min+gzip`)
