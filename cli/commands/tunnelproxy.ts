import { readFile } from 'node:fs/promises'
import { kiteTunnelProxy } from '../../plugins/tunnel-proxy/index.js'
import { EXIT, UsageError, type Command } from '../command.js'
import { parse } from '../util.js'
import { authAndRegister, commonProxyFlags, portOf, proxyApp, runUntilSignal } from './proxy-common.js'

const VERSION = '0.0.2'

export const tunnelproxyCommand: Command = {
  usage: `kite tunnelproxy [--port P] [--host H] [--public-host HOST[:PORT]] [--public-key FILE --private-key FILE]
                      [--cert FILE --key FILE] [--region R] [--env E] [--no-register] [--json] [--version]

Runs the kite "tunnelproxy" (upstream tunnelproxy). Kites that cannot accept connections
call its "register" and get http://<public-host>/proxy?kiteID=<id>, which they register with
Kontrol. A client connecting there makes the proxy ask the kite (over the kite's own
connection) to dial a one-use tunnel back; calls then flow through it. Callers are checked
against the Kontrol of $KITE_HOME/kite.key; the proxy registers itself there as
ws://<public-host>/kite (unless --no-register).

  --port P                port (default 3999; 0 picks a free one)
  --host H                address to listen on (default 0.0.0.0)
  --public-host H[:P]     host (and port) in the URLs handed out (default 127.0.0.1:<port>)
  --public-key, --private-key   RS256 PEM pair that signs tunnel tokens (default: a new pair per start)
  --cert, --key           PEM files: serve https/wss
  --region R, --env E     region and environment (default: KITE_REGION / KITE_ENVIRONMENT, else unknown, as upstream)
  --no-register           do not register the proxy with Kontrol
  --json                  print {url, kiteURL} as JSON
  --version               print the proxy version (${VERSION}) and exit`,
  async run({ args, env, out }) {
    const { values } = parse(args, { ...commonProxyFlags, 'public-host': { type: 'string' }, 'public-key': { type: 'string' }, 'private-key': { type: 'string' } })
    if (values.version === true) {
      out(VERSION)
      return EXIT.ok
    }
    const port = portOf(values.port, 3999, 'port')
    if ((values['public-key'] === undefined) !== (values['private-key'] === undefined)) throw new UsageError('--public-key and --private-key go together')
    const keyPair =
      values['public-key'] !== undefined && values['private-key'] !== undefined
        ? { publicKey: await readFile(values['public-key'], 'utf8'), privateKey: await readFile(values['private-key'], 'utf8') }
        : undefined
    const app = await proxyApp(values, env)
    await app.register(kiteTunnelProxy, { version: VERSION, region: values.region, environment: values.env, publicHost: values['public-host'], keyPair })
    const registering = await authAndRegister(app, env, values['no-register'] !== true, () => app.kiteTunnelProxy.kiteURL())
    await app.listen({ port, host: values.host ?? '0.0.0.0' })
    if (registering) await app.kontrolRegister.ready
    const info = { url: `${app.kiteTunnelProxy.publicBase()}/proxy?kiteID=<kite id>`, kiteURL: app.kiteTunnelProxy.kiteURL() }
    if (values.json === true) out(JSON.stringify(info))
    else out(`tunnel proxy listening; kites behind it are at ${info.url}; its own kite at ${info.kiteURL}`)
    await runUntilSignal(app)
    return EXIT.ok
  },
}
