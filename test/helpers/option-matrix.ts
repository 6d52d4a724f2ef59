import Fastify, { type FastifyInstance } from 'fastify'
import { KiteOptionError } from '../../lib/options.js'

/** Registers one plugin (and what it needs) with `options` added to a working set. */
export type Setup = (app: FastifyInstance, options: Record<string, unknown>) => Promise<unknown> | unknown

/** One value of every kind: each option must accept it or refuse it at register, naming the option. */
export const badValues: unknown[] = [null, -5, 0, NaN, Infinity, 1.5, 'carrier-pigeon', '', {}, [], true, () => 1, { a: 1 }, ['x']]

/**
 * Registers the plugin once per option and value, readies (and with `listen`,
 * listens) the app; every refusal must be a KiteOptionError whose message
 * starts with `<plugin> option <option>`. Returns how many were refused.
 */
export async function tryEveryValue(t: Tap.Test, plugin: string, setup: Setup, options: string[], after?: (app: FastifyInstance) => Promise<unknown> | unknown): Promise<number> {
  let refused = 0
  for (const option of options) {
    for (const value of badValues) {
      const app = Fastify({ logger: false })
      const what = `${plugin} ${option}=${typeof value === 'function' ? 'fn' : JSON.stringify(value)}`
      let error: unknown = null
      try {
        await setup(app, { [option]: value })
        await app.ready()
        if (after !== undefined) await after(app)
      } catch (err) {
        error = err
      }
      await app.close().catch(() => {})
      if (error !== null) {
        refused++
        if (!(error instanceof KiteOptionError)) t.fail(`${what}: not a KiteOptionError: ${String(error)}`)
        else if (!error.message.startsWith(`${plugin} option ${option}`)) t.fail(`${what}: error does not name the option: ${error.message}`)
      }
    }
  }
  return refused
}
