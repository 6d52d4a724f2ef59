import t from 'tap'
import { RemoteWarnings } from '../../lib/connection/remote-warnings.js'

function recorder(): { log: { warn(f: object, m: string): void; debug(f: object, m: string): void }; lines: Array<[string, object]> } {
  const lines: Array<[string, object]> = []
  return { lines, log: { warn: (f, m) => lines.push([`warn ${m}`, f]), debug: (f, m) => lines.push([`debug ${m}`, f]) } }
}

t.test('one warn line per peer and interval; the next carries the count of lines sent to debug', async (t) => {
  let now = 0
  const w = new RemoteWarnings(1000, () => now)
  const { log, lines } = recorder()
  w.warn(log, 'a', {}, 'bad frame')
  w.warn(log, 'a', {}, 'bad frame')
  w.warn(log, 'b', {}, 'bad frame')
  now += 1000
  w.warn(log, 'a', {}, 'bad frame')
  t.same(lines, [['warn bad frame', {}], ['debug bad frame', {}], ['warn bad frame', {}], ['warn bad frame', { suppressed: 1 }]])
})

t.test('the peers remembered are bounded: the one heard from least recently is forgotten first', async (t) => {
  const now = 0
  const w = new RemoteWarnings(1000, () => now, 2)
  const { log, lines } = recorder()
  for (const peer of ['a', 'b', 'a', 'c', 'a', 'b']) w.warn(log, peer, {}, 'x')
  t.same(lines.map(([l]) => l), ['warn x', 'warn x', 'debug x', 'warn x', 'debug x', 'warn x'], 'b was forgotten when c came, so it warns again; a, used more recently, stayed')
})
