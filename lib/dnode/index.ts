export * from './limits.js'
export * from './message.js'
export * from './scrub.js'
export * from './encode.js'
