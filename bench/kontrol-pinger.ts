import { parentPort, workerData } from 'node:worker_threads'
import { KiteClient } from '../lib/client/client.js'

/**
 * The "other client" of bench/kontrol-signing.ts, in a thread of its own so
 * that its latencies are Kontrol's, not the load generator's event loop:
 * `start` pings Kontrol (kite.ping, one at a time) until `stop`, then posts
 * the latencies in ms.
 */
const { url, key } = workerData as { url: string; key: string }
const port = parentPort!
const client = new KiteClient(url, { transport: 'websocket', auth: { type: 'kiteKey', key }, kite: { name: 'pinger', username: 'pinger' } })
await client.connect()
let running: Promise<number[]> | null = null
let stopping = false
port.on('message', (m: 'start' | 'stop' | 'close') => {
  if (m === 'start') {
    stopping = false
    running = (async () => {
      const pings: number[] = []
      while (!stopping) {
        const t0 = performance.now()
        await client.tell('kite.ping')
        pings.push(performance.now() - t0)
      }
      return pings
    })()
  } else if (m === 'stop') {
    stopping = true
    void running!.then((pings) => port.postMessage(pings))
  } else {
    void client.close().then(() => port.close())
  }
})
port.postMessage('ready')
