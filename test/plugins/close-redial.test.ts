/**
 * A peer that redials while the app closes (Go's kite client redials at once
 * on close 1001, and leaves its old TCP connection open): its upgrade is
 * answered 503 at once, and app.close() ends without waiting for either peer.
 * Found with a live Go kite against `kite kontrol` (it took 15 s to exit).
 */
import t from 'tap'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import WebSocket from 'ws'
import { kiteServer } from '../../index.js'

function upgradeRequest(port: number, path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`
}

/** Opens a WebSocket by hand and never answers the close handshake (nor closes its TCP connection). */
async function stubbornPeer(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => socket.write(upgradeRequest(port, '/kite/102/stubborn/websocket')))
    socket.once('data', () => resolve())
    socket.once('error', reject)
  })
  socket.on('data', () => {})
  socket.on('error', () => {})
  return socket
}

/** What a second upgrade gets once the close has begun: the status line, `refused` (nothing listens), or `closed` when the socket ends without an answer. */
function redial(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(upgradeRequest(port, path)))
    let got = ''
    let refused = false
    socket.on('data', (d) => {
      got += d.toString()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      refused = err.code === 'ECONNREFUSED'
    })
    socket.on('close', () => resolve(got.split('\r\n')[0] || (refused ? 'refused' : 'closed')))
  })
}

for (const ownWebsocket of [false, true]) {
  t.test(`upgrades that arrive during app.close() get 503 at once${ownWebsocket ? ' (the app registered @fastify/websocket itself)' : ''}`, async (t) => {
    const app = Fastify()
    if (ownWebsocket) await app.register(websocket)
    await app.register(kiteServer, { name: 'k', version: '1.0.0' })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as AddressInfo
    const stubborn = await stubbornPeer(port)
    t.teardown(() => stubborn.destroy())
    const polite = new WebSocket(`ws://127.0.0.1:${port}/kite/100/polite/websocket`)
    await new Promise((resolve) => polite.once('open', resolve))
    // As Go does: on the server's close, dial again at once.
    const answered = new Promise<string>((resolve) => polite.once('close', () => resolve(redial(port, '/kite/101/again/websocket'))))
    const closed = app.close()
    // kite-server's own @fastify/websocket keeps listening until the kite has drained: 503. The
    // app's own @fastify/websocket closes its sockets first, and the server may stop listening
    // before the redial arrives: refused. Either way at once, never an unanswered upgrade.
    const answer = await answered
    if (ownWebsocket) t.ok(['HTTP/1.1 503 Service Unavailable', 'refused'].includes(answer), `the redial is answered 503 or refused, not left waiting (${answer})`)
    else t.equal(answer, 'HTTP/1.1 503 Service Unavailable', 'the redial is refused with 503, not left waiting')
    await closed
    t.pass('app.close() ended (the stubborn peer was dropped after the grace second, the redial did not hold it)')
    t.equal(await redial(port, '/kite/103/late/websocket'), 'refused', 'after the close nothing listens')
  })
}
