import type { OptionChecker } from '../options.js'

/**
 * Browser stand-in for check-options.ts (the bundle's size budget): a page's
 * KiteClient checks the options it resolves itself (url, transport, limits,
 * backoff, kite, backpressure); the rest (timeouts, logger, tls, auth) go unchecked.
 */
export function checkClientOptions(_c: OptionChecker): void {}
