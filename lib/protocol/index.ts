export * from './kite.js'
export * from './envelope.js'
