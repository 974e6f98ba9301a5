/**
 * The HTTP/2 acceptance check, from a real browser: headless Chromium (Debian's /usr/bin/chromium,
 * driven by playwright-core) loads a page that proxyctl serves from static files on a TLS listener
 * with `http2: true`; the page fetches a proxied resource and opens a WebSocket. Checked from the
 * browser's side: the navigation and the fetch went over h2 (`nextHopProtocol`), and the WebSocket
 * (which Chromium opens over HTTP/1.1 on a connection of its own, as proxyctl does not offer RFC
 * 8441) opens and echoes through `websocket()` to a `ws` peer on a unix socket. The certificate is
 * a test CA's leaf for localhost, trusted by the browser through its public key
 * (`--ignore-certificate-errors-spki-list`), so nothing else about certificates is ignored.
 * Loopback only; a fresh profile in a temp dir.
 */
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import t from 'tap'
import { proxy, serveStatic, websocket } from '@proxyctl/plugins'
import { chromiumMissing, launchChromium } from '../helpers/browser.js'
import { writeTree } from '../helpers/files.js'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { testCa } from '../helpers/tls.js'
import { startUpstream } from '../helpers/upstream.js'
import { startWsUpstream } from '../helpers/ws.js'

t.setTimeout(90_000)

// The page: reports how it and a proxied fetch arrived, then echoes two messages over a WebSocket.
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>h2 through proxyctl</title>
<script>
  window.results = { messages: [], done: false }
  window.results.page = performance.getEntriesByType('navigation')[0].nextHopProtocol
  fetch('/api/data?n=1').then((r) => r.json()).then((j) => {
    window.results.api = j.url
    const entry = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/api/data?n=1'))
    window.results.apiProtocol = entry ? entry.nextHopProtocol : 'no entry'
    const ws = new WebSocket('wss://' + location.host + '/ws/echo')
    ws.binaryType = 'arraybuffer'
    ws.onopen = () => { ws.send('hello over h2 page'); ws.send(new Uint8Array([7, 8, 9]).buffer) }
    ws.onmessage = (e) => {
      window.results.messages.push(typeof e.data === 'string' ? e.data : 'binary:' + Array.from(new Uint8Array(e.data)).join(','))
      if (window.results.messages.length === 2) ws.close(1000, 'done')
    }
    ws.onclose = (e) => { window.results.close = e.code + ' ' + e.reason; window.results.done = true }
    ws.onerror = () => { window.results.error = 'websocket error' }
  }, (err) => { window.results.error = String(err); window.results.done = true })
</script>
`

interface Results { page: string, api: string, apiProtocol: string, messages: string[], close: string, done: boolean, error?: string }

/** base64 of the SHA-256 of a certificate's public key: what Chromium's SPKI allow-list takes. */
function spkiHash (certFile: string): string {
  const pub = execFileSync('openssl', ['x509', '-in', certFile, '-pubkey', '-noout'])
  const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: pub })
  return execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: der }).toString('base64')
}

t.test('Chromium loads a page over h2, fetches a proxied resource over h2 and opens a WebSocket', { skip: chromiumMissing() }, async (t) => {
  const dir = tmpDir(t, 'proxyctl-h2-browser-')
  writeTree(path.join(dir, 'www'), { 'index.html': PAGE }, new Date('2024-01-02T03:04:05Z'))
  const cert = testCa(path.join(dir, 'ca')).leaf('localhost', ['localhost', '127.0.0.1'])
  const api = await startUpstream(t, 'api', { path: path.join(dir, 'api.sock') })
  const echo = await startWsUpstream(t, { path: path.join(dir, 'ws.sock') })
  const running = await startConfig(t, {
    upstreams: { api: { servers: [api.address] }, ws: { servers: [echo.address] } },
    servers: [{
      serverName: 'localhost',
      listen: { address: '127.0.0.1:0', https: { cert: cert.cert, key: cert.key }, http2: true },
      root: path.join(dir, 'www'),
      locations: {
        '/': serveStatic(),
        '/api/': proxy('http://api'),
        '/ws/': websocket('http://ws')
      }
    }]
  })
  const port = running.listeners[0]?.port as number
  const base = `https://localhost:${port}`

  const { page } = await launchChromium(t, dir, {
    args: [
      // localhost resolves to 127.0.0.1 only: the proxy listens there.
      '--host-resolver-rules=MAP localhost 127.0.0.1',
      `--ignore-certificate-errors-spki-list=${spkiHash(cert.certFile)}`
    ]
  })
  const wsUrls: string[] = []
  page.on('websocket', (ws) => { wsUrls.push(ws.url()) })

  const res = await page.goto(`${base}/`, { timeout: 15_000 })
  t.equal(res?.status(), 200, 'the page came through the proxy')
  await page.waitForFunction(() => (globalThis as unknown as { results: Results }).results.done, undefined, { timeout: 15_000 })
  const got = await page.evaluate(() => (globalThis as unknown as { results: Results }).results)

  const table: Array<[keyof Results, unknown, string]> = [
    ['page', 'h2', 'the page arrived over h2 (navigation nextHopProtocol)'],
    ['api', '/api/data?n=1', 'the fetch reached the upstream through proxy()'],
    ['apiProtocol', 'h2', 'the proxied resource arrived over h2 (resource nextHopProtocol)'],
    ['messages', ['hello over h2 page', 'binary:7,8,9'], 'the WebSocket echoed text and binary'],
    ['close', '1000 done', 'the close handshake went through'],
    ['error', undefined, 'no error in the page']
  ]
  for (const [key, want, rule] of table) t.same(got[key], want, rule)
  t.same(wsUrls, [`wss://localhost:${port}/ws/echo`], 'the page opened one WebSocket, wss://localhost:PORT/ws/echo')
  t.equal(api.seen.length, 1, 'one request reached the api upstream over its unix socket')
  t.equal(echo.seen.length, 1, 'one upgrade reached the ws peer over its unix socket')
  t.equal(echo.seen[0]?.headers.origin, base, "with the page's Origin")
})
