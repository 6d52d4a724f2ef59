import type { KiteClientOptions } from '../lib/client/client.js'

let tls: KiteClientOptions['tls']

/** TLS settings from the global `--ca FILE` option, for every client the command makes. */
export function setCliTls(settings: KiteClientOptions['tls']): void {
  tls = settings
}

/** The settings `--ca` gave, or undefined. */
export function cliTls(): KiteClientOptions['tls'] {
  return tls
}
