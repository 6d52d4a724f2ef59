import type { Command } from '../command.js'

/** One row of the command table: what `kite help` lists, and how to load the command. */
export interface CommandEntry {
  name: string
  /** One line for `kite help`. */
  summary: string
  /** Imports the command's module: only the command being run is loaded, so that `kite` starts fast. */
  load(): Promise<Command>
}

/** The command table. */
export const commands: readonly CommandEntry[] = [
  { name: 'kontrol', summary: 'run a Kontrol (registry and token authority)', load: async () => (await import('./kontrol.js')).kontrolCommand },
  { name: 'register', summary: 'get a kite.key from a Kontrol', load: async () => (await import('./register.js')).registerCommand },
  { name: 'showkey', summary: "print the kite.key's claims", load: async () => (await import('./showkey.js')).showkeyCommand },
  { name: 'query', summary: 'list the kites Kontrol knows', load: async () => (await import('./query.js')).queryCommand },
  { name: 'tell', summary: 'call a method of a kite and print the result', load: async () => (await import('./tell.js')).tellCommand },
  { name: 'describe', summary: "list a kite's methods with their schemas", load: async () => (await import('./describe.js')).describeCommand },
  { name: 'ping', summary: 'check that a kite answers', load: async () => (await import('./ping.js')).pingCommand },
  { name: 'proxy', summary: 'run a reverse proxy: public URLs (and TLS) for kites behind it', load: async () => (await import('./proxy.js')).proxyCommand },
  { name: 'tunnelproxy', summary: 'run a tunnel proxy: kites behind NAT (listening on no port) reachable through it', load: async () => (await import('./tunnelproxy.js')).tunnelproxyCommand },
]
