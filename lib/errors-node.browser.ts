import type { NodeErrorCodes as Codes } from './errors-node.js'

/** The browser client raises none of the Node-only errors (errors-node.ts). */
export const NodeErrorCodes = {} as typeof Codes
