import t from 'tap'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

t.test('the package exports work by name from the package directory after a build', async (t) => {
  const cwd = fileURLToPath(new URL('..', import.meta.url))
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', "import * as k from 'fastify-kite'; console.log(['KiteClient','kiteServer','kiteAuth','kontrol','kontrolRegister','systemInfo','KiteError','loadConfig','kiteMetrics','KiteMetrics','kiteTracing','kiteTracer','combineObservers'].map((n) => typeof k[n]).join(','))"],
    { cwd, encoding: 'utf8' },
  )
  t.equal(out.trim(), Array(13).fill('function').join(','))
})
