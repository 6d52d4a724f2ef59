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
} as const satisfies Record<string, { type: WireErrorType; message: string }>
