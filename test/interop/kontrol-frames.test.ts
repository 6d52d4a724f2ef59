import t from 'tap'
import { RawPeer } from '../helpers/raw-peer.js'
import { capture } from '../helpers/frames.js'
import { startKontrol } from '../helpers/kontrol.js'
import { decodeJwt } from '../../lib/kitekey.js'

/**
 * The Go kite's frames to Go Kontrol (capture 11), sent to our Kontrol as the
 * Go kite sent them, with one change: the kite.key is one our Kontrol issued
 * (the recorded one is signed by a key whose private half we do not have).
 */
type Message = { method: string | number; arguments: Array<Record<string, unknown>>; callbacks: Record<string, unknown> }

function resign(frame: string, kiteKey: string): string {
  const [text] = JSON.parse(frame) as [string]
  const msg = JSON.parse(text) as Message
  ;(msg.arguments[0]!.authentication as { key: string }).key = kiteKey
  return JSON.stringify([JSON.stringify(msg)])
}

function messages(frame: string): Message[] {
  return frame.startsWith('a') ? (JSON.parse(frame.slice(1)) as string[]).map((m) => JSON.parse(m) as Message) : []
}

t.test('a Go kite registers, answers heartbeats and is found, as with Go Kontrol', async (t) => {
  const k = await startKontrol(t, { heartbeatInterval: 10 })
  const kiteKey = k.kiteKey('devuser')
  const vectors = capture('11')
  const goClient = vectors.filter((v) => v.from === 'client' && v.conn === 0)
  const goServer = vectors.filter((v) => v.from === 'server' && v.conn === 0)
  const ws = k.url.replace('http', 'ws')
  const kite = await RawPeer.open(`${ws}/896/009334f4997f887d2cd3/websocket`)
  t.teardown(() => kite.close())
  await kite.waitFor((f) => f === 'o')
  kite.send(resign(goClient[0]!.frame, kiteKey))
  const result = await kite.waitFor((f) => messages(f).some((m) => m.method === 0))
  const heartbeatFrame = kite.frames.find((f) => messages(f).some((m) => m.method === 'kite.heartbeat'))!
  const ours = messages(heartbeatFrame).find((m) => m.method === 'kite.heartbeat')!
  const theirs = goServer.flatMap((v) => v.messages).find((m) => m.method === 'kite.heartbeat')! as unknown as Message
  t.same(Object.keys(ours.arguments[0]!), Object.keys(theirs.arguments[0]!), 'envelope keys in Go order')
  // Go Kontrol asks for [10, ping] and judges at 30 s; ours judges at the 10 s interval and asks for a beat every 9 s (interval − slack, whole seconds for Go kites).
  t.same(ours.arguments[0]!.withArgs, [9, '[Function]'], 'kite.heartbeat [9, ping]')
  t.same(ours.callbacks, theirs.callbacks, 'callbacks {"0":[0,"responseCallback"],"1":[0,"withArgs",1]}')
  t.equal(ours.arguments[0]!.authentication, null)
  t.ok(kite.frames.indexOf(heartbeatFrame) <= kite.frames.indexOf(result), 'heartbeat request first, then the register result (as Go)')
  const reply = messages(result).find((m) => m.method === 0)!
  const recordedReply = goServer.flatMap((v) => v.messages).find((m) => m.method === 0)! as unknown as Message
  t.same(reply.arguments, recordedReply.arguments, '{"url":…,"heartbeatInterval":0}')
  // The Go kite's ping and its answer to kite.heartbeat, byte for byte.
  for (const v of goClient.slice(1)) kite.send(v.frame)
  t.ok(k.app.kontrol.registry.heard('b257b879-ecc5-4459-83bf-b434699e612f', [...k.app.kite.connections].find((c) => c.remoteKite?.name === 'math')!), 'the ping counts as a sign of life')

  const finder = vectors.filter((v) => v.from === 'client' && v.conn === 1)
  const peer = await RawPeer.open(`${ws}/699/5d63630e3d3867329712/websocket`)
  t.teardown(() => peer.close())
  await peer.waitFor((f) => f === 'o')
  peer.send(resign(finder[0]!.frame, k.kiteKey('devuser')))
  const found = messages(await peer.waitFor((f) => messages(f).some((m) => m.method === 0)))[0]!
  const recorded = vectors.filter((v) => v.from === 'server' && v.conn === 1).flatMap((v) => v.messages).find((m) => m.method === 0)! as unknown as Message
  const ourKites = (found.arguments[0]!.result as { kites: Array<Record<string, unknown>> }).kites
  const theirKites = (recorded.arguments[0]!.result as { kites: Array<Record<string, unknown>> }).kites
  t.equal(ourKites.length, 1)
  t.same(Object.keys(ourKites[0]!), Object.keys(theirKites[0]!), 'kite, url, keyId, token')
  t.same(ourKites[0]!.kite, theirKites[0]!.kite, 'the same kite as Go Kontrol found')
  t.equal(ourKites[0]!.url, theirKites[0]!.url)
  const claims = decodeJwt(ourKites[0]!.token as string).claims
  t.equal(claims.aud, decodeJwt(theirKites[0]!.token as string).claims.aud, 'the same audience as Go Kontrol: /devuser/unknown/math')
})
