/**
 * What the wire core needs from its platform, in Node. The browser build
 * (esbuild, `scripts/build-browser.mjs`) swaps this file for
 * `platform.browser.ts`, and every other `x.ts` that has an `x.browser.ts`.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { hostname } from 'node:os'

export { randomUUID, hostname }

let idPool = Buffer.alloc(0)
let idOffset = 0

/** 16 random hex characters (G request ids), drawn from a pooled buffer. */
export function randomId16(): string {
  if (idOffset + 8 > idPool.length) {
    idPool = randomBytes(8 * 512)
    idOffset = 0
  }
  const id = idPool.toString('hex', idOffset, idOffset + 8)
  idOffset += 8
  return id
}

/** UTF-8 length of a string. */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text)
}

/** Lets the process exit while the timer is pending. */
export function unref(timer: NodeJS.Timeout): void {
  timer.unref()
}

/** Runs `fn` after the current turn's I/O (Node's setImmediate). */
export const soon: (fn: () => void) => void = setImmediate
