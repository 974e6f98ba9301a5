/**
 * 1,000 tunnels open at once, all echoing at the same time, over TCP and over a unix socket
 * upstream; then all closed, and the proxy holds nothing afterwards.
 */
import crypto from 'node:crypto'
import path from 'node:path'
import t from 'tap'
import type { WebSocket } from 'ws'
import { websocket } from '@proxyctl/plugins'
import { tmpDir } from '../helpers/proxy.js'
import { activeConnections, startLogged } from '../helpers/failure.js'
import { waitFor } from '../helpers/lifecycle.js'
import { closed, nextMessage, openWs, startWsUpstream, wsUrl } from '../helpers/ws.js'

t.setTimeout(120_000)

const N = 1000

for (const transport of ['tcp', 'unix'] as const) {
  t.test(`${transport}: ${N} concurrent tunnels echoing at once`, async (t) => {
    const dir = tmpDir(t, 'proxyctl-ws-')
    const up = await startWsUpstream(t, transport === 'tcp' ? { port: 0 } : { path: path.join(dir, 'up.sock') })
    const p = await startLogged(t, {
      upstreams: { ws: { servers: [up.address] } },
      servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket('http://ws') } }]
    })
    const url = wsUrl(`http://127.0.0.1:${p.port}`, '/ws/')
    const t0 = Date.now()
    // Opened in waves of 200: 1,000 SYNs at once can overflow the listen backlog (511, as nginx's),
    // which is the kernel's business, not the proxy's.
    const clients: WebSocket[] = []
    for (let i = 0; i < N; i += 200) clients.push(...await Promise.all(Array.from({ length: Math.min(200, N - i) }, () => openWs(t, url))))
    const opened = Date.now() - t0
    t.equal(clients.length, N, `${N} tunnels open (${opened} ms)`)
    t.equal(up.clients.size, N, `the upstream holds ${N} connections`)

    // Every client sends three messages at once and must get exactly its own back, in order.
    const t1 = Date.now()
    const results = await Promise.all(clients.map(async (ws, i) => {
      const mine = [0, 1, 2].map((k) => `${i}:${k}:${crypto.randomBytes(8).toString('hex')}`)
      const got: string[] = []
      const done = new Promise<void>((resolve) => {
        const on = (d: Buffer): void => { got.push(d.toString()); if (got.length === 3) { ws.off('message', on); resolve() } }
        ws.on('message', on)
      })
      for (const m of mine) ws.send(m)
      await done
      return got.join('|') === mine.join('|')
    }))
    t.equal(results.filter(Boolean).length, N, `all ${N} got their own three messages back (${Date.now() - t1} ms)`)
    t.equal(activeConnections(p.proxy), N, 'each tunnel holds its peer (least-conn counts it)')

    await Promise.all(clients.map(async (ws) => { ws.close(1000); await closed(ws) }))
    t.ok(await waitFor(() => activeConnections(p.proxy) === 0 && up.clients.size === 0, 5000), 'everything released after close')
    t.equal(p.lines.filter((l) => /tunnel closed/.test(l.msg)).length, N, `${N} close lines`)
    t.equal(p.errors().length, 0, 'no errors')
    // One more after the storm.
    const last = await openWs(t, url)
    last.send('still fine')
    t.equal((await nextMessage(last)).data.toString(), 'still fine')
  })
}
