import type { Logger } from 'pino'

const noop = (): void => {}

/**
 * A logger that drops everything, shaped like pino's: the client's default,
 * so that importing the client does not load pino (nor, in a browser, need it).
 */
export function silentLogger(): Logger {
  const logger = {
    level: 'silent',
    fatal: noop,
    error: noop,
    warn: noop,
    info: noop,
    debug: noop,
    trace: noop,
    silent: noop,
    child: () => logger,
    isLevelEnabled: () => false,
    bindings: () => ({}),
  }
  return logger as unknown as Logger
}
