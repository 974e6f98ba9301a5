/**
 * limitConn on WebSocket tunnels (nginx's limit_conn counts a request until its connection's
 * request is finalized, which for an upgraded one is when the tunnel closes): a tunnel holds its
 * slot while it is open; the max+1th upgrade gets 503 and nothing reaches the upstream; a closed
 * tunnel gives its slot back. Real `ws` peers through a real proxyctl.
 */
import t from 'tap'
import { websocket } from '@proxyctl/plugins'
import { waitFor } from '../helpers/lifecycle.js'
import { startConfig, urlOf } from '../helpers/proxy.js'
import { nextMessage, openWs, rawHandshake, startWsUpstream, wsUrl } from '../helpers/ws.js'
import { parseScrape, value } from '../metrics/fixtures/scrape.js'

t.test('limitConn max 2 on a WebSocket location: two tunnels hold the slots, the third upgrade is 503 and never reaches the upstream', async (t) => {
  const up = await startWsUpstream(t, { port: 0 })
  const p = await startConfig(t, {
    metrics: { listen: 0 },
    limitConnZones: { tunnels: { key: '$binary_remote_addr' } },
    servers: [{ listen: '127.0.0.1:0', locations: { '/live/': { limitConn: { zone: 'tunnels', max: 2 }, handler: websocket(up.target) } } }]
  })
  const port = p.listeners[0]?.port as number
  const first = await openWs(t, wsUrl(urlOf(p), '/live/1'))
  const second = await openWs(t, wsUrl(urlOf(p), '/live/2'))
  // Longer than any request: the slots are the tunnels', not their upgrade requests'.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const refused = await rawHandshake(t, { port }, '/live/3')
  refused.socket.destroy()
  first.send('still open')
  const echoed = (await nextMessage(first)).data.toString()
  second.close()
  await waitFor(() => up.clients.size === 1, 5000, 'the second tunnel closed at the upstream')
  // The proxy lets go of the slot when the client's connection closes: poll for it, bounded.
  let again: Awaited<ReturnType<typeof rawHandshake>> | undefined
  let refusedWhileClosing = 0
  for (let i = 0; i < 20 && again === undefined; i++) {
    const h = await rawHandshake(t, { port }, '/live/4')
    if (h.head.startsWith('HTTP/1.1 101')) again = h
    else { refusedWhileClosing++; h.socket.destroy(); await new Promise((resolve) => setTimeout(resolve, 50)) }
  }
  const scrape = parseScrape(await (await fetch(`${p.metrics?.url as string}/metrics`)).text())
  const cases: Array<[string, unknown, unknown]> = [
    ['the third upgrade is refused with 503', refused.head.split('\r\n')[0], 'HTTP/1.1 503 Service Temporarily Unavailable'],
    ['the refused upgrade never reached the upstream (two handshakes there)', up.seen.slice(0, 2).map((r) => r.url), ['/live/1', '/live/2']],
    ['the open tunnels still carry messages', echoed, 'still open'],
    ['once a tunnel closed, a new upgrade gets its slot', again?.head.split('\r\n')[0], 'HTTP/1.1 101 Switching Protocols'],
    ['and reaches the upstream', up.seen.map((r) => r.url).filter((u) => u === '/live/3'), []],
    ['proxyctl_limit_rejections_total counts each refusal in zone tunnels', value(scrape, 'proxyctl_limit_rejections_total', { limit: 'limitConn', zone: 'tunnels' }), 1 + refusedWhileClosing]
  ]
  for (const [name, got, want] of cases) t.same(got, want, name)
  t.equal(up.seen.at(-1)?.url, '/live/4', 'the new tunnel\'s handshake is the last the upstream saw')
  again?.socket.destroy()
})
