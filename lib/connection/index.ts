export * from './connection.js'
export * from './pending.js'
