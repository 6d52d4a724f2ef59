import { kiteReverseProxy } from '../../plugins/reverse-proxy/index.js'
import { EXIT, UsageError, type Command } from '../command.js'
import { parse } from '../util.js'
import { authAndRegister, commonProxyFlags, portOf, proxyApp, runUntilSignal } from './proxy-common.js'

const VERSION = '0.0.1'

export const proxyCommand: Command = {
  usage: `kite proxy --region R [--port P] [--host H] [--public-host H] [--public-port P]
                [--cert FILE --key FILE] [--env E] [--no-register] [--json] [--version]

Runs the kite "proxy" (upstream reverseproxy). Kites call its "register" with their own
URL and get https://<public-host>:<public-port>/proxy/<kite id>, which they register with
Kontrol; requests and WebSockets to that URL are forwarded to the kite. Callers are
checked against the Kontrol of $KITE_HOME/kite.key, and the proxy registers itself there
as <scheme>://<public-host>:<public-port>/kite (unless --no-register).

  --region R          region of the proxy kite (required, as upstream)
  --port P            port (default 3999; 0 picks a free one)
  --host H            address to listen on (default 0.0.0.0)
  --public-host H     host in the URLs handed out (default 127.0.0.1)
  --public-port P     port in the URLs handed out (default: --port)
  --cert, --key       PEM files: serve https/wss (TLS ends here; kites stay plain)
  --env E             environment of the proxy kite (default development)
  --no-register       do not register the proxy with Kontrol
  --json              print {url, kiteURL} as JSON
  --version           print the proxy version (${VERSION}) and exit`,
  async run({ args, env, out }) {
    const { values } = parse(args, { ...commonProxyFlags, 'public-host': { type: 'string' }, 'public-port': { type: 'string' } })
    if (values.version === true) {
      out(VERSION)
      return EXIT.ok
    }
    if (values.region === undefined || values.region === '') throw new UsageError('--region is required')
    const port = portOf(values.port, 3999, 'port')
    const publicPort = values['public-port'] === undefined ? undefined : portOf(values['public-port'], 0, 'public-port')
    const app = await proxyApp(values, env)
    await app.register(kiteReverseProxy, { version: VERSION, region: values.region, environment: values.env ?? 'development', publicHost: values['public-host'] ?? '127.0.0.1', publicPort: publicPort === 0 ? undefined : publicPort })
    const registering = await authAndRegister(app, env, values['no-register'] !== true, () => app.kiteReverseProxy.kiteURL())
    await app.listen({ port, host: values.host ?? '0.0.0.0' })
    if (registering) await app.kontrolRegister.ready
    const info = { url: `${app.kiteReverseProxy.publicBase()}/proxy/<kite id>`, kiteURL: app.kiteReverseProxy.kiteURL() }
    if (values.json === true) out(JSON.stringify(info))
    else out(`reverse proxy listening; kites behind it are at ${info.url}; its own kite at ${info.kiteURL}`)
    await runUntilSignal(app)
    return EXIT.ok
  },
}
