import type { KiteErrorCode } from '../lib/errors.js'

/** What a command gets: its arguments, where to write, and the environment. */
export interface CommandContext {
  args: string[]
  env: NodeJS.ProcessEnv
  out: (line: string) => void
  err: (line: string) => void
}

/** One `kite` command: a file in commands/ exports one of these; commands/index.ts names it. */
export interface Command {
  /** Full help: usage and options. */
  usage: string
  /** Resolves with the exit code (0 ok, 1 failure); a long-running command resolves when it stops. */
  run(ctx: CommandContext): Promise<number>
}

/** A mistake in how the command was called: exit code 2 and the usage. */
export class UsageError extends Error {
  readonly code: KiteErrorCode = 'KITE_ERR_CLI_USAGE'
}

/** Exit codes scripts can rely on. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const
