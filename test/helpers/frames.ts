import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** One transport-level frame of the recorded traffic in test/fixtures/frames/vectors.json. */
export interface Vector {
  capture: string
  conn: number
  from: 'client' | 'server'
  transport: 'websocket' | 'sockjs-websocket' | 'sockjs-xhr'
  frame: string
  messages: Array<{ method: string | number; arguments: unknown[]; callbacks: Record<string, unknown> }>
}

export function loadVectors(): Vector[] {
  const file = fileURLToPath(new URL('../fixtures/frames/vectors.json', import.meta.url))
  return JSON.parse(readFileSync(file, 'utf8')) as Vector[]
}

/** The frames of one capture, in order. */
export function capture(prefix: string): Vector[] {
  return loadVectors().filter((v) => v.capture.startsWith(prefix))
}
