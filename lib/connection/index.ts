export * from './connection.js'
