export * from './kite.js'
export * from './envelope.js'
export * from './version.js'
export * from './kontrol.js'
