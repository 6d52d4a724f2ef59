import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** One pino JSON line of the abuse server. */
export interface LogLine {
  msg: string
  time: number
  level: number
  [key: string]: unknown
}

export interface AbuseServer {
  address: string
  lines: LogLine[]
  /** Resolves with the first line (seen or to come) matching `pred`. */
  waitLine(pred: (l: LogLine) => boolean): Promise<LogLine>
  /** Retained memory of the server process after a full GC: heap plus array buffers, in bytes. */
  retained(): Promise<number>
}

const fixture = fileURLToPath(new URL('../fixtures/abuse-server.mjs', import.meta.url))

/** The example app's math kite in a child process (debug logs as JSON lines), with extra kite-server options. */
export async function startAbuseServer(t: Teardown, options: Record<string, unknown> = {}): Promise<AbuseServer> {
  const child = spawn(process.execPath, ['--expose-gc', fixture], { env: { ...process.env, KITE_OPTIONS: JSON.stringify(options) }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => child.kill('SIGKILL'))
  const lines: LogLine[] = []
  let waiters: Array<() => void> = []
  createInterface({ input: child.stdout }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as LogLine)
    } catch {
      return
    }
    const w = waiters
    waiters = []
    for (const fn of w) fn()
  })
  let exited = false
  child.once('exit', () => {
    exited = true
    for (const fn of waiters) fn()
  })
  const waitLine = async (pred: (l: LogLine) => boolean): Promise<LogLine> => {
    for (let seen = 0; ; ) {
      for (; seen < lines.length; seen++) if (pred(lines[seen]!)) return lines[seen]!
      if (exited) throw new Error('the abuse server exited')
      await new Promise<void>((r) => waiters.push(r))
    }
  }
  const address = (await waitLine((l) => l.msg === 'abuse-server listening')).address as string
  const retained = async (): Promise<number> => {
    const m = (await (await fetch(`${address}/mem`)).json()) as { heapUsed: number; arrayBuffers: number }
    return m.heapUsed + m.arrayBuffers
  }
  return { address, lines, waitLine, retained }
}

/** A masked client WebSocket text frame (RFC 6455 §5.2). */
export function clientFrame(text: string, opcode = 1): Buffer {
  const payload = Buffer.from(text)
  const len = payload.length
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(head + 4 + len)
  frame[0] = 0x80 | opcode
  if (len < 126) frame[1] = 0x80 | len
  else if (len < 65536) {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(len, 2)
  } else {
    frame[1] = 0x80 | 127
    frame.writeBigUInt64BE(BigInt(len), 2)
  }
  const mask = randomBytes(4)
  mask.copy(frame, head)
  for (let i = 0; i < len; i++) frame[head + 4 + i] = payload[i]! ^ mask[i & 3]!
  return frame
}

/**
 * A raw TCP socket that performs the WebSocket upgrade on `path`, then never
 * reads again: what the server sends piles up in its own buffers.
 */
export async function nonReadingWebSocket(address: string, path: string): Promise<net.Socket> {
  const u = new URL(address)
  const socket = net.connect(Number(u.port), u.hostname)
  await once(socket, 'connect')
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
  let head = ''
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      head += d.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      socket.off('data', onData)
      socket.pause()
      resolve()
    }
    socket.on('data', onData)
    socket.once('error', reject)
  })
  if (!head.startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${head.split('\r\n')[0]}`)
  socket.on('error', () => {})
  return socket
}

/**
 * Writes frames made by `next` as fast as the socket takes them (waiting for
 * `drain` when it is full) until the socket closes or `stop` settles.
 * Resolves with the number of frames written.
 */
export async function floodSocket(socket: net.Socket, next: (i: number) => Buffer, stop: Promise<unknown>): Promise<number> {
  let done = socket.destroyed
  const finished = Promise.race([once(socket, 'close'), stop]).then(() => {
    done = true
  })
  let i = 0
  while (!done) {
    if (!socket.write(next(i++))) await Promise.race([once(socket, 'drain'), finished])
    else if (i % 64 === 0) await new Promise((r) => setImmediate(r))
  }
  socket.destroy()
  return i
}

const KITE = { username: 'flood', environment: 'e', name: 'flooder', version: '1.0.0', region: 'r', hostname: 'h', id: 'f' }

/** A `countdown(5, cb)` call with callback ids `2i` (response) and `2i + 1` (onTick): the server sends six messages for it. */
export function countdownCall(i: number): string {
  return JSON.stringify({
    method: 'countdown',
    arguments: [{ kite: KITE, authentication: null, responseCallback: '[Function]', withArgs: [5, '[Function]'] }],
    callbacks: { [2 * i]: [0, 'responseCallback'], [2 * i + 1]: [0, 'withArgs', 1] },
  })
}
