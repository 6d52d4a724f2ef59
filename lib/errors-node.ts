import type { WireErrorType } from './errors.js'

/**
 * The part of the error table (lib/errors.ts merges it into `KiteErrorCodes`) that only Node code
 * raises: plugins, the `kite` command, versions and durations, kite.key files. Apart so that the
 * browser bundle, which swaps in errors-node.browser.ts, does not carry their messages; a code the
 * browser client can raise belongs in lib/errors.ts.
 */
export const NodeErrorCodes = {
  // Issue 14 (one place for each thing): Node-only errors that were plain Error/TypeError.
  KITE_ERR_AUTH_SETUP: { type: 'genericError', message: 'kite-auth: %s' },
  KITE_ERR_VERSION_MALFORMED: { type: 'genericError', message: 'Malformed version: %s' },
  KITE_ERR_CONSTRAINT_MALFORMED: { type: 'genericError', message: 'Malformed constraint: %s' },
  KITE_ERR_DURATION_INVALID: { type: 'genericError', message: 'not a duration: "%s" (use e.g. 15s, 500ms, 1m30s)' },
  KITE_ERR_JWT_MALFORMED: { type: 'genericError', message: '%s' },
  KITE_ERR_FETCH_CLOSED: { type: 'sendError', message: 'fetch after close' },
  KITE_ERR_NEEDS_KONTROL_REGISTER: { type: 'genericError', message: '%s needs the kontrol-register plugin' },
  KITE_ERR_FINDER_TAKEN: { type: 'genericError', message: 'getKites is already provided by another plugin' },
  KITE_ERR_USERNAME_LOCKED: { type: 'genericError', message: 'the kite username cannot change while peers are connected' },
  KITE_ERR_MIRROR_UNAVAILABLE: { type: 'genericError', message: "method %s: the HTTP mirror needs kite-server's routes (register the plugin first)" },
  KITE_ERR_REGISTER_REFUSED: { type: 'genericError', message: '%s' },
  KITE_ERR_REGISTER_NO_HEARTBEAT: { type: 'genericError', message: 'kontrol gave no heartbeat interval' },
  KITE_ERR_SYSTEMINFO_MEMINFO: { type: 'genericError', message: '/proc/meminfo has no %s' },
  KITE_ERR_CLI_USAGE: { type: 'genericError', message: '%s' },
  KITE_ERR_CLI_NO_KONTROL_URL: { type: 'genericError', message: 'no kontrol URL: set --kontrol or KITE_KONTROL_URL' },
  KITE_ERR_CLI_NO_KITEKEY: { type: 'genericError', message: 'no kite.key at %s (run "kite register --kontrol URL" first)' },
  KITE_ERR_CLI_PROXY_NO_KITEKEY: { type: 'genericError', message: 'no kite.key in $KITE_HOME: the proxy checks its callers against its Kontrol (run "kite register" first)' },
  KITE_ERR_CLI_NOT_KITEKEY: { type: 'genericError', message: 'kontrol answered with something that is not a kite.key' },
  KITE_ERR_CLI_REGISTRATION_LOCAL: { type: 'genericError', message: 'registration is only open to this machine' },
  KITE_ERR_CLI_NO_DESCRIBE: { type: 'genericError', message: '%s does not describe its methods (no kite.describe: a Go or kite.js kite, or describe turned off)' },
  KITE_ERR_CLI_DESCRIBE_TIMEOUT: { type: 'genericError', message: '%s did not answer kite.describe in %s ms (kite.js kites never answer methods they do not know)' },
  // Kontrol: signing, key pairs, storage setup (issue 14): raised by the Kontrol plugin only
  KITE_ERR_KONTROL_SIGN: { type: 'genericError', message: 'kontrol cannot sign: %s' },
  KITE_ERR_KONTROL_KEY_PAIR: { type: 'genericError', message: 'kontrol key pair: %s' },
  KITE_ERR_KONTROL_KEY_INVALID: { type: 'genericError', message: 'invalid kontrol key: %s' },
  KITE_ERR_KONTROL_STORAGE_CONFIG: { type: 'genericError', message: '%s' },
  KITE_ERR_KONTROL_STORAGE_CONFLICT: { type: 'genericError', message: 'kontrol storage: %s' },
  KITE_ERR_KONTROL_STORAGE_CLOSED: { type: 'genericError', message: 'kontrol storage is closed' },
  // Raised in Node only (kite.key files, Kontrol, pools): kept out of the browser bundle.
  KITE_ERR_KITEKEY_MALFORMED: { type: 'genericError', message: 'malformed kite.key: %s' },
  KITE_ERR_KITEKEY_MISSING: { type: 'genericError', message: 'no kite.key at %s' },
  KITE_ERR_KITEKEY_UNREADABLE: { type: 'genericError', message: 'cannot read kite.key at %s: %s' },
  KITE_ERR_KONTROL_AMBIGUOUS: { type: 'genericError', message: 'query matches more than one kite' },
  KITE_ERR_KONTROL_AUTH_TYPE: { type: 'genericError', message: 'Unexpected authentication type: %s' },
  KITE_ERR_KONTROL_ID_TAKEN: { type: 'genericError', message: 'kite id %s is registered by another user' },
  KITE_ERR_KONTROL_INVALID: { type: 'genericError', message: '%s' },
  KITE_ERR_KONTROL_NO_KEY: { type: 'genericError', message: 'no valid authentication key found' },
  KITE_ERR_KONTROL_STORAGE: { type: 'genericError', message: 'kontrol storage is unavailable: %s' },
  KITE_ERR_POOL_NO_KITES: { type: 'sendError', message: 'no kites found for %s' },
  // Kontrol's answer when nothing matches (Go's text, spec §6.5), and the Node WebSocket transport's close.
  KITE_ERR_KONTROL_NO_KITES: { type: 'genericError', message: 'no kites found' },
  KITE_ERR_TRANSPORT_CLOSED: { type: 'sendError', message: 'connection closed (%s)' },
  KITE_ERR_POOL_UNAVAILABLE: { type: 'sendError', message: 'no kite could take "%s": %s' },
} as const satisfies Record<string, { type: WireErrorType; message: string }>
