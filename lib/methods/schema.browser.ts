import { usageError } from '../errors.js'
import type { MethodSchema, ValidatorCompiler } from './schema.js'

/**
 * The browser build's stand-in: a page's own methods (the ones its server may
 * call) take no schemas, so the validator code stays out of the bundle.
 */
export class CompiledSchema {
  constructor(_schema: MethodSchema, _compile: ValidatorCompiler, method: string) {
    throw usageError('KITE_ERR_METHOD_SETUP', `method ${method}: schemas are not available in the browser client`)
  }
}
