/**
 * X-Accel-Redirect through a real proxyctl: the app on a unix socket, real files behind an
 * `internal` alias location, the article's `try_files $uri/index.html $uri @app` at server level.
 * The table of fixtures/x-accel-cases.ts (whole answers, the close, every request the app
 * received), the same table x-accel-nginx-compare.ts holds nginx to, played over 127.0.0.1,
 * [::1] and a unix socket; then what a table of answers cannot show: the error lines, the app's
 * connection kept, ignoreHeaders and its config errors.
 */
import http from 'node:http'
import http2 from 'node:http2'
import path from 'node:path'
import t from 'tap'
import { resolveConfig } from '@proxyctl/core'
import { proxy } from '@proxyctl/plugins'
import { freePort, startLogged } from '../helpers/failure.js'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { exchange, type Target } from '../helpers/raw-http.js'
import { accelCases, buildTree, playAccelCase, proxyctlAccelConfig, startAccelApp } from './fixtures/x-accel-cases.js'

t.test('X-Accel-Redirect: the table checked against nginx, over 127.0.0.1, [::1] and a unix socket', async t => {
  const dir = tmpDir(t)
  const w = { sock: path.join(dir, 'app.sock'), root: path.join(dir, 'www') }
  buildTree(w.root)
  const seen = await startAccelApp(t, w.sock)
  const unix = path.join(dir, 'proxy.sock')
  const running = await startConfig(t, proxyctlAccelConfig(w, ['127.0.0.1:0', '[::1]:0', `unix:${unix}`]))
  const ports = running.listeners.map((l) => Number(new URL(l.url).port))
  const targets: Array<[string, Target]> = [['127.0.0.1', { port: ports[0] }], ['[::1]', { host: '::1', port: ports[1] }], ['unix socket', { socketPath: unix }]]
  for (const [over, to] of targets) {
    for (const c of accelCases) t.same(await playAccelCase(to, c, seen), c.expected, `${c.name} (over ${over})`)
  }
})

t.test('what the table cannot show', async t => {
  const dir = tmpDir(t)
  const w = { sock: path.join(dir, 'app.sock'), root: path.join(dir, 'www') }
  buildTree(w.root)
  await startAccelApp(t, w.sock)
  const logged = await startLogged(t, proxyctlAccelConfig(w, '127.0.0.1:0'))
  const to = { port: logged.port }
  const rows: Array<{ rule: string, path: string, status: number, code: string, msg: RegExp }> = [
    { rule: 'an unsafe X-Accel-Redirect value: one error line naming it', path: '/unsafe/x', status: 404, code: 'PROXYCTL_ACCEL_REDIRECT_UNSAFE', msg: /^unsafe URI "\/protected\/\.\.\/secret\.txt" was detected in X-Accel-Redirect$/ },
    { rule: 'a redirect cycle: one error line, as nginx\'s', path: '/loop/x', status: 500, code: 'PROXYCTL_INTERNAL_REDIRECT_CYCLE', msg: /^rewrite or internal redirection cycle while internally redirecting to "@app"$/ },
    // Deliberate (README): nginx answers a bodiless 400 carrying the app's Content-Type.
    { rule: 'a value neither @name nor starting with /: 500 and an error line naming it', path: '/relative/x', status: 500, code: 'PROXYCTL_INTERNAL_REDIRECT_INVALID', msg: /^invalid internal redirect target "protected\/report\.txt"$/ }
  ]
  for (const r of rows) {
    const before = logged.errors().length
    const answer = await exchange(to, r.path, { host: 'accel.test' })
    t.equal(answer.status, r.status, `${r.rule}: ${r.status}`)
    const lines = logged.errors().slice(before)
    t.same(lines.map((l) => l.code), [r.code], `${r.rule}: code ${r.code}`)
    t.match(lines[0]?.msg, r.msg, `${r.rule}: the message`)
  }
  // Deliberate (README): slashes merged as in every internal redirect; nginx takes //protected//
  // literally, which no location /protected/ matches.
  const merged = await exchange(to, '/slashes/x', { host: 'accel.test' })
  t.same([merged.status, merged.body], [200, 'the report, 26 bytes long\n'], '//protected//report.txt: slashes merged, the file')
})

t.test('over h2c the same: the file, the app\'s Content-Type and the carried headers, nothing else of the app\'s', async t => {
  const dir = tmpDir(t)
  const w = { sock: path.join(dir, 'app.sock'), root: path.join(dir, 'www') }
  buildTree(w.root)
  await startAccelApp(t, w.sock)
  const port = await freePort()
  const config = proxyctlAccelConfig(w, '127.0.0.1:0')
  ;(config.servers?.[0] as { listen: unknown }).listen = [{ address: `127.0.0.1:${port}`, http2: true }]
  await startConfig(t, config)
  const session = http2.connect(`http://127.0.0.1:${port}`)
  t.teardown(() => session.close())
  const { headers, body } = await new Promise<{ headers: http2.IncomingHttpHeaders, body: string }>((resolve, reject) => {
    const s = session.request({ ':path': '/file/report', ':authority': 'accel.test' })
    let body = ''
    let headers: http2.IncomingHttpHeaders = {}
    s.on('response', (h) => { headers = h })
    s.on('data', (d: Buffer) => { body += d.toString() })
    s.on('end', () => resolve({ headers, body }))
    s.on('error', reject)
  })
  t.same({ status: headers[':status'], type: headers['content-type'], cookies: headers['set-cookie'], disposition: headers['content-disposition'], cacheControl: headers['cache-control'], expires: headers.expires, ranges: headers['accept-ranges'], etag: headers.etag, custom: headers['x-custom'], body },
    { status: 200, type: 'application/pdf', cookies: ['a=1; Path=/', 'b=2; Path=/'], disposition: 'attachment; filename="report.pdf"', cacheControl: 'private', expires: 'never', ranges: 'none, bytes', etag: '"5e0d5da5-1a"', custom: undefined, body: 'the report, 26 bytes long\n' })
})

t.test('the app\'s dropped answer: a small body is read to its end and the connection reused; a big one costs the connection, not the time to read it', async t => {
  const rows = [
    { rule: 'a 16 KiB body (under `buffers`): three redirected answers over one app connection', size: 16 * 1024, connections: 1 },
    { rule: 'a 64 MiB body: each redirected answer closes its app connection', size: 64 << 20, connections: 3 }
  ]
  for (const r of rows) {
    const dir = tmpDir(t)
    const w = { sock: path.join(dir, 'app.sock'), root: path.join(dir, 'www') }
    buildTree(w.root)
    let connections = 0
    const body = Buffer.alloc(r.size, 'x')
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'X-Accel-Redirect': '/protected/report.txt', 'Content-Length': body.length })
      res.on('error', () => {})
      res.end(body)
    })
    server.on('connection', () => { connections++ })
    await new Promise<void>((resolve) => server.listen(w.sock, resolve))
    t.teardown(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })
    const running = await startConfig(t, proxyctlAccelConfig(w, '127.0.0.1:0'))
    const to = { port: Number(new URL(running.listeners[0]?.url ?? '').port) }
    for (let i = 0; i < 3; i++) {
      const a = await exchange(to, `/file/${i}`, { host: 'accel.test' })
      t.same([a.status, a.body], [200, 'the report, 26 bytes long\n'], `${r.rule}: request ${i} gets the file, not the app's body`)
    }
    t.equal(connections, r.connections, r.rule)
  }
})

t.test('ignoreHeaders: the names nginx takes, in any case; others are config errors with their key path (X-Accel-Buffering ignored: buffering-cases.ts)', async t => {
  const rows: Array<{ rule: string, ignore: unknown, error: RegExp | null }> = [
    { rule: 'every name nginx\'s proxy_ignore_headers takes, in any case', ignore: ['x-accel-redirect', 'X-Accel-Expires', 'X-Accel-Limit-Rate', 'X-Accel-Buffering', 'X-Accel-Charset', 'Expires', 'Cache-Control', 'Set-Cookie', 'Vary'], error: null },
    { rule: 'an unknown name', ignore: ['X-Accel-Redirect', 'X-Nope'], error: /servers\[0\]\.locations\["\/"\]\.ignoreHeaders\[1\]: unknown header "X-Nope": nginx's proxy_ignore_headers takes X-Accel-Redirect, / },
    { rule: 'a name that is not a string', ignore: [42], error: /servers\[0\]\.locations\["\/"\]\.ignoreHeaders\[0\]: unknown header 42/ }
  ]
  for (const r of rows) {
    const config = { servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('http://127.0.0.1:1', { ignoreHeaders: r.ignore as never }) } }] }
    if (r.error === null) t.doesNotThrow(() => resolveConfig(config), r.rule)
    else t.throws(() => resolveConfig(config), r.error, r.rule)
  }
})
