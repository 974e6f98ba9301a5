/**
 * The article's browser check, automated: a real headless Chromium (Debian's /usr/bin/chromium,
 * driven by playwright-core) loads a page served through the proxy, whose script opens
 * `new WebSocket('ws://127.0.0.1:PORT/ws/')`; the upgrade goes through the proxy to an echo
 * upstream on a unix socket. Checked: the 101 as the browser's network layer saw it (CDP
 * Network.webSocketHandshakeResponseReceived and the page's `websocket` event), and the echoed
 * messages, text and binary. Loopback only; a fresh profile in a temp dir.
 */
import path from 'node:path'
import t from 'tap'
import type { WebSocket as PwWebSocket } from 'playwright-core'
import { respond } from '@proxyctl/core'
import { websocket } from '@proxyctl/plugins'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { startWsUpstream } from '../helpers/ws.js'
import { chromiumMissing, launchChromium } from '../helpers/browser.js'

t.setTimeout(90_000)

// The page's script: no "$" in it (bodies are templates).
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>ws through proxyctl</title>
<script>
  window.results = { messages: [], done: false }
  const ws = new WebSocket('ws://' + location.host + '/ws/chat', ['chat'])
  ws.binaryType = 'arraybuffer'
  ws.onopen = () => {
    window.results.protocol = ws.protocol
    ws.send('hello from chromium')
    ws.send(new Uint8Array([1, 2, 3, 250]).buffer)
    ws.send('x'.repeat(100000))
  }
  ws.onmessage = (e) => {
    const m = typeof e.data === 'string' ? (e.data.length > 100 ? 'long:' + e.data.length : e.data) : 'binary:' + Array.from(new Uint8Array(e.data)).join(',')
    window.results.messages.push(m)
    if (window.results.messages.length === 3) ws.close(1000, 'bye')
  }
  ws.onclose = (e) => { window.results.close = e.code + ' ' + e.reason; window.results.done = true }
  ws.onerror = () => { window.results.error = true }
</script>
`

t.test('Chromium opens a WebSocket through the proxy and exchanges messages', { skip: chromiumMissing() }, async (t) => {
  const dir = tmpDir(t, 'proxyctl-browser-')
  const up = await startWsUpstream(t, { path: path.join(dir, 'app.sock') }, { handleProtocols: (p) => p.has('chat') ? 'chat' : false })
  const proxy = await startConfig(t, {
    upstreams: { ws: { servers: [up.address] } },
    servers: [{
      listen: '127.0.0.1:0',
      locations: {
        '= /': respond({ status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: PAGE }),
        '/ws/': websocket('http://ws')
      }
    }]
  })
  const base = proxy.listeners[0]?.url as string

  const { context, page } = await launchChromium(t, dir)
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  const handshake = new Promise<{ status: number, headers: Record<string, string> }>((resolve) => {
    cdp.on('Network.webSocketHandshakeResponseReceived', (e) => resolve({ status: e.response.status, headers: e.response.headers }))
  })
  const sent: string[] = []
  const received: string[] = []
  const socketEvent = new Promise<PwWebSocket>((resolve) => {
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => sent.push(typeof f.payload === 'string' ? f.payload.slice(0, 30) : `binary:${f.payload.length}`))
      ws.on('framereceived', (f) => received.push(typeof f.payload === 'string' ? f.payload.slice(0, 30) : `binary:${f.payload.length}`))
      resolve(ws)
    })
  })

  const res = await page.goto(`${base}/`, { timeout: 15_000 })
  t.equal(res?.status(), 200, 'the page came through the proxy')
  const ws = await socketEvent
  t.equal(ws.url(), `${base.replace('http', 'ws')}/ws/chat`, 'the page opened ws://127.0.0.1:PORT/ws/chat')
  const hs = await handshake
  t.equal(hs.status, 101, 'the browser saw 101 Switching Protocols')
  t.equal(Object.entries(hs.headers).find(([k]) => k.toLowerCase() === 'sec-websocket-protocol')?.[1], 'chat', 'with the upstream\'s subprotocol')
  await page.waitForFunction(() => (globalThis as unknown as { results: { done: boolean } }).results.done, undefined, { timeout: 15_000 })
  const results = await page.evaluate(() => (globalThis as unknown as { results: unknown }).results) as { messages: string[], protocol: string, close: string, error?: boolean }
  t.same(results.messages, ['hello from chromium', 'binary:1,2,3,250', 'long:100000'], 'the echoes, text and binary')
  t.equal(results.protocol, 'chat')
  t.equal(results.close, '1000 bye', 'the close handshake went through')
  t.notOk(results.error)
  t.same(sent, ['hello from chromium', 'binary:4', 'x'.repeat(30)], 'frames the browser sent')
  t.same(received, ['hello from chromium', 'binary:4', 'x'.repeat(30)], 'frames the browser received')
  t.equal(up.seen.length, 1, 'one upgrade reached the upstream over its unix socket')
  t.equal(up.seen[0]?.headers.origin, base, 'with the page\'s Origin')
})
