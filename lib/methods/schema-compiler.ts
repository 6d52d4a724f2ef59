import { createRequire } from 'node:module'
import type { ValidatorCompiler } from './schema.js'

let fallback: ValidatorCompiler | null = null

/**
 * A validator compiler built the way Fastify builds its default one
 * (@fastify/ajv-compiler with Fastify's Ajv defaults), for method tables
 * outside a Fastify app (a KiteClient's methods).
 */
export function defaultValidatorCompiler(): ValidatorCompiler {
  if (fallback === null) {
    const require = createRequire(import.meta.url)
    const fastifyDir = require.resolve('fastify')
    const AjvCompiler = createRequire(fastifyDir)('@fastify/ajv-compiler') as () => (schemas: object, options: object) => ValidatorCompiler
    fallback = AjvCompiler()({}, { customOptions: {}, plugins: [] })
  }
  return fallback
}
