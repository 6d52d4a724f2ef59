import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { KiteError, KiteErrorCodes, WireErrorTypes, fromWire, kiteError, toWire } from '../../lib/errors.js'

t.test('the README error table is the error table', async (t) => {
  const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')
  const rows = [...readme.matchAll(/^\| `(KITE_ERR_[A-Z_]+)` \| `(\w+)` \| (.+?) \|$/gm)].map((m) => [m[1], m[2], m[3]!.replace(/\\\|/g, '|')])
  const table = Object.entries(KiteErrorCodes).map(([code, e]) => [code, e.type, e.message])
  t.same(rows, table)
})

t.test('every code maps to a wire type of spec §3.4', async (t) => {
  for (const [code, entry] of Object.entries(KiteErrorCodes)) t.ok((WireErrorTypes as readonly string[]).includes(entry.type), code)
})

t.test('errors convert to and from the wire', async (t) => {
  const err = kiteError('KITE_ERR_METHOD_NOT_FOUND', 'foo')
  t.same(toWire(err), { type: 'methodNotFound', message: 'Method not found: foo', code: 'KITE_ERR_METHOD_NOT_FOUND', id: '' })
  t.same(toWire(new Error('boom'), 'abc'), { type: 'genericError', message: 'boom', code: 'KITE_ERR_HANDLER_FAILED', id: 'abc' })
  t.same(toWire('plain'), { type: 'genericError', message: 'plain', code: 'KITE_ERR_HANDLER_FAILED', id: '' })
  t.same(toWire(Object.assign(new Error('own'), { code: 'KITE_ERR_KONTROL_INVALID' })).code, 'KITE_ERR_KONTROL_INVALID', 'an error carrying a kite code keeps it')
  t.same(toWire(new KiteError('genericError', 'from a peer without a code')).code, 'KITE_ERR_HANDLER_FAILED', 'never an empty code')
  const back = fromWire({ type: 'authenticationError', message: 'token: token is expired', code: '', id: '9f1c2a7b03de4c55' })
  t.ok(back instanceof KiteError)
  t.equal(back.toString(), 'authenticationError: token: token is expired (9f1c2a7b03de4c55)')
  t.equal(fromWire({}).type, 'genericError', "kite.js's {} errors become genericError")
  t.equal(fromWire('text').message, 'text')
  t.equal(new KiteError('genericError', 'plain').toString(), 'plain')
})
