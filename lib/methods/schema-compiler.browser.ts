import type { ValidatorCompiler } from './schema.js'

/** In the browser build there is no Fastify Ajv to borrow: a page's own methods take no schemas. */
export function defaultValidatorCompiler(): ValidatorCompiler {
  throw new TypeError('method schemas need a validator compiler; the browser client\'s methods take none')
}
