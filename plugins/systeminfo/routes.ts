import type { FastifyInstance } from 'fastify'
import type { SystemInfo } from './collect.js'
import type { Readiness } from './health.js'
import type { ResolvedSystemInfoOptions } from './options.js'

export const systemInfoSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['state', 'diskUsage', 'diskTotal', 'memoryUsage', 'totalMemoryLimit', 'homeDir', 'uname'],
  properties: {
    state: { type: 'string', enum: ['RUNNING'] },
    diskUsage: { type: 'integer', description: 'KiB' },
    diskTotal: { type: 'integer', description: 'KiB' },
    memoryUsage: { type: 'integer', description: 'bytes' },
    totalMemoryLimit: { type: 'integer', description: 'bytes' },
    homeDir: { type: 'string' },
    uname: { type: 'string' },
  },
} as const

export const readySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: { status: { type: 'string', enum: ['starting', 'ready', 'draining', 'not-ready'] } },
} as const

export const liveSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['status', 'eventLoopDelayMs', 'maxEventLoopDelayMs', 'heapUsedBytes', 'rssBytes'],
  properties: {
    status: { type: 'string', enum: ['ok', 'under-pressure'] },
    eventLoopDelayMs: { type: ['number', 'null'], description: 'null: the loop did not turn once in the last sample interval' },
    maxEventLoopDelayMs: { type: 'number' },
    heapUsedBytes: { type: 'number' },
    rssBytes: { type: 'number' },
  },
} as const

export interface RouteDeps {
  options: ResolvedSystemInfoOptions
  readiness: Readiness
  collect: () => Promise<SystemInfo>
}

/** The HTTP routes: system information, liveness and readiness. */
export function addRoutes(app: FastifyInstance, { options, readiness, collect }: RouteDeps): void {
  if (options.systemInfoPath !== false) {
    app.get(options.systemInfoPath, { schema: { response: { 200: systemInfoSchema } } }, async () => collect())
  }
  if (options.livePath !== false) {
    app.get(options.livePath, { schema: { response: { 200: liveSchema, 503: liveSchema } } }, async (_req, reply) => {
      // @fastify/under-pressure samples event-loop delay, heap and RSS, and judges them against the limits.
      const pressure = app.isUnderPressure()
      const usage = app.memoryUsage()
      reply.code(pressure ? 503 : 200).header('cache-control', 'no-store')
      return {
        status: pressure ? 'under-pressure' : 'ok',
        eventLoopDelayMs: Number.isFinite(usage.eventLoopDelay) ? Math.round(usage.eventLoopDelay) : null,
        maxEventLoopDelayMs: options.maxEventLoopDelayMs,
        heapUsedBytes: usage.heapUsed,
        rssBytes: usage.rssBytes,
      }
    })
  }
  if (options.readyPath !== false) {
    app.get(options.readyPath, { schema: { response: { 200: readySchema, 503: readySchema } } }, async (_req, reply) => {
      const status = await readiness.evaluate()
      reply.code(status === 'ready' ? 200 : 503).header('cache-control', 'no-store')
      return { status }
    })
  }
}
