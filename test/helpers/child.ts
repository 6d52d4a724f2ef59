import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Runs a test fixture (test/fixtures/<name>) in its own Node process; killed on teardown. */
export function runFixture(t: Teardown, name: string, env: Record<string, string>): ChildProcess {
  const file = fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))
  const child = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString()
    if (process.env.KITE_TEST_LOG === '1') process.stderr.write(d)
  })
  child.once('exit', (code, signal) => {
    if (code !== 0 && code !== null && signal === null && stderr !== '') process.stderr.write(`fixture ${name} exited ${code}: ${stderr}\n`)
  })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return child
}

/**
 * Resolves with the first stdout line of `child` matching `pattern`; rejects, with what the child
 * printed, if it exits first or after `ms`. The budget is generous on purpose: it is a backstop for
 * a child that hangs, not a measure of speed (a busy machine starts a Node process in seconds).
 */
export function waitForLine(child: ChildProcess, pattern: RegExp, ms = 120_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buffered = ''
    let stderr = ''
    const printed = (): string => `stdout ${JSON.stringify(buffered)}, stderr ${JSON.stringify(stderr)}`
    const timer = setTimeout(() => done(new Error(`no line matching ${pattern} within ${ms} ms (${printed()})`)), ms)
    const onData = (d: Buffer): void => {
      buffered += d.toString()
      // Whole lines only: a chunk may end in the middle of one.
      for (const line of buffered.split('\n').slice(0, -1)) {
        const m = line.match(pattern)
        if (m !== null) return done(null, m)
      }
    }
    const onStderr = (d: Buffer): void => {
      stderr += d.toString()
    }
    const onExit = (code: number | null): void => done(new Error(`process exited (${code}) before printing ${pattern} (${printed()})`))
    const done = (err: Error | null, m?: RegExpMatchArray): void => {
      clearTimeout(timer)
      child.stdout!.off('data', onData)
      child.stderr?.off('data', onStderr)
      child.off('exit', onExit)
      if (err !== null) reject(err)
      else resolve(m!)
    }
    child.stdout!.on('data', onData)
    child.stderr?.on('data', onStderr)
    child.once('exit', onExit)
  })
}

/** Resolves when `child` has exited. */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/** The built `kite` command. */
export const KITE_CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

/** Starts a long-running `kite ARGS` (or another `script`) as a child process; killed on teardown. Wait for it with waitForLine. */
export function spawnKite(t: Teardown, args: string[], env: NodeJS.ProcessEnv, script = KITE_CLI): ChildProcess {
  const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, KITE_KONTROL_URL: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return child
}

/** What one `kite` run printed and how it exited. */
export interface KiteRun {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `kite ARGS` as a user would, as a child process with its own KITE_HOME and no KITE_KONTROL_URL. */
export function runKite(args: string[], home: string): Promise<KiteRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [KITE_CLI, ...args], { env: { ...process.env, KITE_HOME: home, KITE_KONTROL_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}
