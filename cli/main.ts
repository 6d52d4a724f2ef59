#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { KiteError } from '../lib/errors.js'
import { setCliTls } from './tls.js'
import { EXIT, UsageError, type CommandContext } from './command.js'
import { commands } from './commands/index.js'

/** This package's version, from the nearest package.json named fastify-kite above this file. */
export function packageVersion(): string {
  let dir = new URL('.', import.meta.url)
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: unknown; version?: unknown }
      if (pkg.name === 'fastify-kite' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // no package.json here: look further up
    }
    const up = new URL('..', dir)
    if (up.href === dir.href) return 'unknown'
    dir = up
  }
}

function help(out: (line: string) => void): void {
  out('usage: kite COMMAND [options]   (kite help COMMAND for details)\n')
  for (const c of commands) out(`  ${c.name.padEnd(12)}${c.summary}`)
  out('  --version   prints the version of fastify-kite')
  out('\nOptions for every command: --ca FILE trusts that CA (PEM) for https:// kites and Kontrols.')
  out('Environment: KITE_HOME (default ~/.kite) holds kite.key; KITE_KONTROL_URL overrides its kontrolURL.')
}

/** Runs one command line; resolves with the exit code. Errors are one line on stderr, never a stack. */
export async function main(argv: string[], ctx: Omit<CommandContext, 'args'>): Promise<number> {
  // `--ca FILE` (any command): trust this CA for https/wss kites and Kontrols.
  const rest: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--ca' || a.startsWith('--ca=')) {
      const file = a === '--ca' ? argv[++i] : a.slice('--ca='.length)
      if (file === undefined || file === '') {
        ctx.err('kite: --ca needs a file (PEM CA certificate)')
        return EXIT.usage
      }
      try {
        setCliTls({ ca: readFileSync(file, 'utf8') })
      } catch (err) {
        ctx.err(`kite: cannot read --ca ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
        return EXIT.failed
      }
    } else rest.push(a)
  }
  const [name, ...args] = rest
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const c = commands.find((x) => x.name === args[0])
    if (c !== undefined) ctx.out((await c.load()).usage)
    else help(ctx.out)
    return name === undefined ? EXIT.usage : EXIT.ok
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    ctx.out(packageVersion())
    return EXIT.ok
  }
  const entry = commands.find((c) => c.name === name)
  if (entry === undefined) {
    ctx.err(`kite: unknown command "${name}" (kite help lists them)`)
    return EXIT.usage
  }
  const command = await entry.load()
  if (args.includes('--help') || args.includes('-h')) {
    ctx.out(command.usage)
    return EXIT.ok
  }
  try {
    return await command.run({ ...ctx, args })
  } catch (err) {
    if (err instanceof UsageError) {
      ctx.err(`kite ${name}: ${err.message}\n\n${command.usage}`)
      return EXIT.usage
    }
    // A KiteError says its wire type (timeout, sendError, …) unless it is the generic one.
    const message = err instanceof KiteError && err.type !== 'genericError' ? `${err.type}: ${err.message}` : (err as Error).message
    ctx.err(`kite ${name}: ${message}`)
    return EXIT.failed
  }
}

// A reader that stops early (kite query | head) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
})
const code = await main(process.argv.slice(2), {
  env: process.env,
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
})
process.exitCode = code
