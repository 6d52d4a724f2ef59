import { createInterface } from 'node:readline'
import { kiteError } from '../errors.js'
import type { MethodTable } from './dispatch.js'
import type { KiteRequest } from './request.js'

function argumentError(message: string): Error {
  return kiteError('KITE_ERR_ARGUMENT_INVALID', message)
}

/** `kite.print [message]`: writes the message to stdout. Opt-in: it reaches the local terminal. */
export function print(req: KiteRequest): null {
  const [message] = req.args
  if (typeof message !== 'string') throw argumentError('kite.print needs a string')
  process.stdout.write(message)
  return null
}

function askTerminal(prompt: string, hidden: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: hidden && process.stdin.isTTY === true })
    if (hidden) {
      const out = rl as unknown as { _writeToOutput?: (s: string) => void }
      out._writeToOutput = () => {}
      process.stdout.write(prompt)
    }
    rl.question(hidden ? '' : prompt, (answer) => {
      rl.close()
      if (hidden) process.stdout.write('\n')
      resolve(answer)
    })
    rl.once('error', reject)
  })
}

/** `kite.prompt [text]`: asks the local terminal for a line. Opt-in. */
export async function prompt(req: KiteRequest): Promise<string> {
  const [text] = req.args
  if (typeof text !== 'string') throw argumentError('kite.prompt needs a string')
  return askTerminal(text, false)
}

/** `kite.getPass [text]`: asks the local terminal for a line without echo. Opt-in. */
export async function getPass(req: KiteRequest): Promise<string> {
  const [text] = req.args
  if (typeof text !== 'string') throw argumentError('kite.getPass needs a string')
  return askTerminal(text, true)
}

/** The opt-in built-ins that reach this machine's terminal: `kite.print`, `kite.prompt`, `kite.getPass`. */
export function addTerminalBuiltins(table: MethodTable): void {
  table.handle('kite.print', print)
  table.handle('kite.prompt', prompt)
  table.handle('kite.getPass', getPass)
}
