import { usageError } from '../errors.js'
import type { MethodSchema, SerializerCompiler, ValidatorCompiler } from './schema.js'

/**
 * The browser build's stand-in: a page's own methods (the ones its server may
 * call) take no schemas, so the validator code stays out of the bundle.
 */
export class CompiledSchema {
  readonly serializeResult: ((result: unknown) => string) | null = null
  constructor(_schema: MethodSchema, _compile: ValidatorCompiler, method: string, _checkResults?: boolean, _serializer?: SerializerCompiler | null) {
    throw usageError('KITE_ERR_METHOD_SETUP', `method ${method}: schemas are not available in the browser client`)
  }
}
