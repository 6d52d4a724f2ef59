// Recipe: run kite.js 1.0.13 (CommonJS) as a real peer in Node 20 tests.
'use strict'
const { Kite, KiteServer } = require('kite.js')

// --- server ---------------------------------------------------------------
// KiteServer never passes `hostname` to its transport (binds 0.0.0.0), and the
// SockJS transport rejects port 0 (`if (!port) throw`). Subclass both transports:
// force 127.0.0.1 and allow port 0.
class WS127 extends KiteServer.transport.WebSocket {
  constructor (o) { super({ ...o, hostname: '127.0.0.1' }) }
  httpServer () { return this.server._server } // ws@3.3.3 has no address()
}
// Own SockJS transport (same interface as KiteServer.transport.SockJS: emits
// 'connection' with a Session, getAddress(), close()). Reason: the stock one creates
// sockjs with default disconnect_delay=5000, so an xhr-polling session keeps a 5 s
// timer alive after close (process exit delayed ~5 s), and it can't take port 0.
const EventEmitter = require('node:events')
const sockjs = require('sockjs')
const SockJSSession = require('kite.js/lib/server/sockjs/session')
class SockJS127 extends EventEmitter {
  constructor ({ port = 0, prefix = '' } = {}) {
    super()
    this.sessions = new Set()
    this.sockjs = sockjs.createServer({ log: () => {}, disconnect_delay: 50 })
    this.sockjs.on('connection', conn => {
      const s = new SockJSSession(conn) // .getId() .send() .close(), emits 'message'/'close'
      this.sessions.add(s); s.on('close', () => this.sessions.delete(s))
      this.emit('connection', s)
    })
    this.server = require('node:http').createServer()
    this.sockjs.installHandlers(this.server, { prefix }) // also serves raw WS at {prefix}/websocket
    this.server.listen(port, '127.0.0.1')
  }
  httpServer () { return this.server }
  getAddress () { const a = this.server.address(); return a ? `${a.address}:${a.port}` : '' }
  close () { this.server.close() }
}

/**
 * transport: 'ws' | 'sockjs'; prefix e.g. '/kite' (SockJS only; raw WS ignores the path).
 * Resolves { ks, port, url, close }.
 */
async function startKiteServer ({ transport = 'ws', prefix = '', api, name = 'math', logLevel = 0 } = {}) {
  const ks = new KiteServer({
    name,
    auth: false, // => every method's mustAuth=false (it is de-facto never enforced anyway)
    logLevel, // 0 = CRITICAL only; default (INFO) prints to console
    transportClass: transport === 'sockjs' ? SockJS127 : WS127,
    prefix, // used only by the SockJS transport
    api
  })
  ks.listen(0)
  const http = ks.server.httpServer()
  if (!http.listening) await new Promise(r => http.once('listening', r))
  const port = http.address().port
  const url = transport === 'sockjs' ? `http://127.0.0.1:${port}${prefix}` : `ws://127.0.0.1:${port}`
  const close = () => new Promise(resolve => {
    const t = ks.server // KiteServer.close() sets ks.server = null
    if (t && t.sessions) for (const s of t.sessions) s.close() // sockjs: c[3000,"Go away!"]
    const h = t && t.httpServer()
    ks.close() // ws: terminates clients + closes http; sockjs: http.close() only
    if (h) { h.closeAllConnections(); if (h.listening) h.once('close', resolve); else resolve() } else resolve()
  })
  return { ks, port, url, close }
}

// --- client ---------------------------------------------------------------
/** transport: 'ws' | 'sockjs-ws' | 'sockjs-xhr' */
function connectKite (url, { transport = 'ws', prefix, auth, logLevel = 0, api, ...identity } = {}) {
  const opts = {
    url, // ws: 'ws://host:port[/path]'; sockjs: 'http://host:port' (+ prefix) — NOT ws://
    prefix, // appended verbatim to url (url += prefix) — don't also put it in url
    autoReconnect: false, // otherwise onClose schedules connect() via a backoff setTimeout
    autoConnect: true,
    logLevel,
    auth, // { type: 'token', key: '<jwt>' } -> sent as `authentication` in every call
    api, // methods the server may call on us (answered in 2-arg dnode form!)
    name: 'kitejs-square', username: 'kitejs', environment: 'kitejs-env', version: '1.0.0',
    ...identity // name, username, environment, version, region, hostname
  }
  if (transport !== 'ws') {
    opts.transportClass = Kite.transport.SockJS
    opts.transportOptions = { transports: [transport === 'sockjs-xhr' ? 'xhr-polling' : 'websocket'] }
  }
  const kite = new Kite(opts)
  kite.on('error', () => {}) // REQUIRED: Kite emits ('error','Websocket error!',ev); no listener => throws
  return kite
}

/** Close a Kite without reconnect or leftover timers; resolves on the transport 'close'. */
function closeKite (kite) {
  return new Promise(resolve => {
    if (!kite.ws || kite.readyState === 3 /* CLOSED */) { kite.disconnect(); return resolve() }
    kite.once('close', () => resolve())
    kite.disconnect() // clears heartbeat/expiry/backoff handles, autoReconnect=false, ws.close()
  })
}

module.exports = { Kite, KiteServer, startKiteServer, connectKite, closeKite, WS127, SockJS127 }
