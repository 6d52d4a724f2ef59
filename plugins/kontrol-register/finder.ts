// The finder lives in lib/client (pools use it without Fastify); kept here for existing imports.
export { KiteFinder, type KontrolCaller, type FinderOptions } from '../../lib/client/finder.js'
