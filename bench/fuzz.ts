/**
 * `npm run fuzz`: the long wire fuzz. A kite server runs in a child process
 * (so a crash is seen, counted and the server restarted); FUZZ_FRAMES
 * generated frames (default 1,000,000; seed FUZZ_SEED) go to it over eight
 * WebSocket lanes (six raw, two SockJS). Prints frames/s and crashes.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { KiteClient } from '../lib/client/client.js'
import { fuzzFrames, registerFuzzTarget, sendFuzz } from './fuzz-frames.js'

async function serve(): Promise<void> {
  const app = Fastify({ logger: false })
  await registerFuzzTarget(app)
  process.on('message', (m) => {
    if (m === 'pollution?') process.send?.({ polluted: ({} as Record<string, unknown>).polluted !== undefined })
  })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  process.send?.({ address })
}

async function main(): Promise<void> {
  const frames = Number(process.env.FUZZ_FRAMES ?? 1_000_000)
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000)
  let crashes = 0
  const start = (): Promise<{ url: string; child: ReturnType<typeof fork> }> =>
    new Promise((resolve) => {
      const child = fork(fileURLToPath(import.meta.url), ['serve'], { stdio: 'inherit' })
      child.once('message', (m) => resolve({ url: `${(m as { address: string }).address}/kite`, child }))
      child.once('exit', (code, signal) => {
        if (code !== 0 && signal !== 'SIGTERM') crashes++
      })
    })
  let server = await start()
  const started = Date.now()
  let sent = 0
  let closes = 0
  const chunk = 100_000
  for (let done = 0, round = 0; done < frames; round++) {
    const n = Math.min(chunk, frames - done)
    if (server.child.exitCode !== null) server = await start()
    const r = await sendFuzz(server.url.replace('http', 'ws'), fuzzFrames(n, seed + round * 1000), 8, (lane) => lane >= 6)
    sent += r.sent
    closes += r.closes
    done += n
    const s = (Date.now() - started) / 1000
    console.log(`${sent} frames, ${Math.round(sent / s)} frames/s, ${closes} connections closed by the server, crashes ${crashes}`)
  }
  const client = new KiteClient(server.url)
  await client.connect()
  const answers = (await client.tell('square', 12)) === 144
  await client.close()
  const polluted = await new Promise<boolean>((resolve) => {
    server.child.once('message', (m) => resolve((m as { polluted: boolean }).polluted))
    server.child.send('pollution?')
  })
  server.child.kill('SIGTERM')
  const s = (Date.now() - started) / 1000
  console.log(`seed ${seed}: ${sent} frames in ${s.toFixed(1)} s = ${Math.round(sent / s)} frames/s; crashes: ${crashes}; still answering: ${answers}; Object.prototype polluted: ${polluted}`)
  process.exitCode = crashes === 0 && answers && !polluted ? 0 : 1
}

if (process.argv[2] === 'serve') await serve()
else await main()
