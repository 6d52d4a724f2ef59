import { usageError } from '../errors.js'
import type { ValidatorCompiler } from './schema.js'

/** In the browser build there is no Fastify Ajv to borrow: a page's own methods take no schemas. */
export function defaultValidatorCompiler(): ValidatorCompiler {
  throw usageError('KITE_ERR_METHOD_SETUP', 'method schemas need a validator compiler; the browser client\'s methods take none')
}
