import t from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { TRANSPORTS } from '../helpers/server.js'

const fixture = fileURLToPath(new URL('../fixtures/close-in-flight.mjs', import.meta.url))

function run(transport: string, mode = ''): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now()
  return new Promise((resolve) => {
    execFile(process.execPath, [fixture, transport, mode], { timeout: 20000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, ms: Date.now() - started })
    })
  })
}

const cases = [...TRANSPORTS.map((transport) => ({ transport, mode: transport === 'xhr-polling' ? 'keep-serving' : '' })), { transport: 'xhr-polling', mode: '' }]

for (const { transport, mode } of cases) {
  t.test(`${transport}${mode ? ` (return503OnClosing: false)` : ''}: app.close() with calls in flight answers every caller, then the process exits by itself`, async (t) => {
    const { code, stdout, stderr } = await run(transport, mode)
    t.equal(code, 0, stderr)
    const { results, afterClose } = JSON.parse(stdout) as { results: Array<{ result?: unknown; type?: string; message?: string }>; afterClose: { type: string } }
    const disconnect = { type: 'disconnect', message: 'Remote kite has disconnected' }
    if (transport === 'xhr-polling' && mode === '') {
      // Fastify answers 503 to new polls once close begins, so an XHR caller may only learn of the close.
      t.ok([JSON.stringify({ result: 'finished' }), JSON.stringify(disconnect)].includes(JSON.stringify(results[0])), 'its result or a disconnect error')
      t.ok([JSON.stringify({ type: 'genericError', message: 'Kite is shutting down' }), JSON.stringify(disconnect)].includes(JSON.stringify(results[1])), 'an error or a disconnect error')
      return
    }
    t.same(results[0], { result: 'finished' }, 'a call that ends within the grace period gets its result')
    t.same(results[1], { type: 'genericError', message: 'Kite is shutting down' }, 'a call still running after the grace period is answered with an error')
    t.same(results[2], { type: 'disconnect', message: 'Remote kite has disconnected' }, "the server's own call to the client fails with disconnect")
    t.ok(['sendError', 'disconnect'].includes(afterClose.type), 'calls after the close fail (at once, or as soon as the close is seen)')
  })
}
