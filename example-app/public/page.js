// The page's side of the example: fastify-kite/browser, served as /kite.js.
import { KiteClient } from '/kite.js'

const $ = (id) => document.getElementById(id)
const params = new URLSearchParams(location.search)
const token = params.get('token')
const client = new KiteClient(`${location.origin}/kite`, {
  transport: params.get('transport') ?? 'sockjs',
  auth: token ? { type: 'token', key: token } : null,
  kite: { name: 'math-page' },
})
// A method the server may call on this page.
client.handle('page.name', (req) => `a page at ${location.host} (asked by ${req.kite.name})`)
window.kiteClient = client

async function square() {
  $('square').textContent = String(await client.tell('square', Number($('n').value)))
}

try {
  await client.connect()
  $('status').textContent = 'connected'
  $('transport').textContent = client.transportName
  await square()
  $('again').onclick = () => square().catch((err) => ($('square').textContent = err.message))
  const done = await client.tell('countdown', 5, (i) => {
    const tick = document.createElement('span')
    tick.className = 'tick'
    tick.textContent = String(i)
    $('ticks').append(tick)
  })
  $('countdown').textContent = done
  $('greeting').textContent = await client.tell('greetPage')
  $('whoami').textContent = token ? await client.tell('whoami') : '(no token given)'
  $('status').textContent = 'done'
} catch (err) {
  $('status').textContent = `error: ${err.type ?? ''} ${err.message}`
}
