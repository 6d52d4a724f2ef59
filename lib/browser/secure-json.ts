/**
 * The browser build's `secure-json-parse` (swapped in by scripts/build-browser.mjs):
 * `parse(text, undefined, { protoAction: 'remove' })` as message.ts calls it,
 * in a few lines: `__proto__` keys are dropped while parsing.
 */
function dropProto(key: string, value: unknown): unknown {
  return key === '__proto__' ? undefined : value
}

export default {
  parse(text: string): unknown {
    return JSON.parse(text, dropProto)
  },
}
