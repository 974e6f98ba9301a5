/**
 * The proxy's header rules through a real proxyctl and real (raw TCP / unix socket) upstreams:
 * what the upstream receives for a client's request headers, and what the client receives for an
 * upstream's response headers, byte for byte (helpers/raw-http.ts keeps header lines in order and
 * case). The rules are nginx's defaults (proxy_set_header Host $proxy_host; hop-by-hop headers
 * dropped both ways; proxy_hide_header Date/Server/X-Pad/X-Accel-*), plus proxyctl's opt-in
 * `xForwarded` and RFC 7239 `forwarded`.
 */
import path from 'node:path'
import t from 'tap'
import { respond, type ProxyConfig } from '@proxyctl/core'
import { proxy, type ProxyOptions } from '@proxyctl/plugins'
import { startConfig, targetOf, tmpDir, urlOf } from '../helpers/proxy.js'
import { exchange, headerValues, lineEcho, startRawUpstream, type RawReply, type RawRequest, type Target } from '../helpers/raw-http.js'

interface Echoed { line: string, target: string, headers: Array<[string, string]>, bodyBytes: number }

/* ------------------------------------------------------------------ request headers */

interface RequestRow {
  rule: string
  /** Location key; its handler is `proxy(target, options)`. */
  location: string
  target: string
  options?: ProxyOptions
  /** How the client connects: over 127.0.0.1 (default), [::1] or the proxy's unix socket. */
  via?: 'v4' | 'v6' | 'unix'
  host?: string | null
  version?: string
  method?: string
  headers?: Array<[string, string]>
  body?: string
  /** Header name → its values at the upstream, in order ([] = absent). `{port}` is the proxy's port. */
  want: Record<string, string[]>
  /** Header lines that must reach the upstream with this exact spelling, in this order. */
  lines?: Array<[string, string]>
  bodyBytes?: number
  /** The body must arrive with exactly one framing: `Content-Length: N`, or `Transfer-Encoding: chunked`. */
  framing?: number
  /** A known difference from nginx, asserted as proxyctl behaves, with the reason. */
  differs?: string
}

t.test('request headers: client → proxyctl → upstream', async t => {
  const dir = tmpDir(t)
  const upSock = path.join(dir, 'up.sock')
  const proxySock = path.join(dir, 'proxy.sock')
  const v4 = await startRawUpstream(t)
  const unix = await startRawUpstream(t, { path: upSock })

  const rows: RequestRow[] = [
    // Host
    { rule: 'Host is $proxy_host: host:port of a direct target, whatever the client sent', location: '/direct/', target: `http://${v4.address}`, host: 'Example.com:8080', want: { host: [v4.address] } },
    { rule: 'Host is $proxy_host: an upstream name, no port', location: '/up/', target: 'http://backend', host: 'Example.com', want: { host: ['backend'] } },
    { rule: 'Host is $proxy_host: the upstream name as written in the target', location: '/case/', target: 'http://BackEnd', want: { host: ['BackEnd'] } },
    { rule: 'Host is "localhost" for a unix socket target', location: '/unix/', target: `http://unix:${upSock}`, host: 'Example.com', want: { host: ['localhost'] } },
    { rule: 'Host is the upstream\'s name for an upstream on a unix socket', location: '/usock/', target: 'http://sock', want: { host: ['sock'] } },
    { rule: 'setHeaders Host $http_host: the client\'s Host as sent', location: '/hh/', target: 'http://backend', options: { setHeaders: { Host: '$http_host' } }, host: 'WWW.Example.com:8080', want: { host: ['WWW.Example.com:8080'] } },
    {
      rule: 'setHeaders Host $http_host, HTTP/1.0 without Host: an empty Host line',
      location: '/hh/',
      target: 'http://backend',
      version: 'HTTP/1.0',
      host: null,
      want: { host: [''] },
      differs: 'nginx sends no Host (its upstream request is HTTP/1.0); HTTP/1.1 requires the line, so it goes empty (RFC 9112 3.2): the upstream sees no host either way'
    },
    // setHeaders
    {
      rule: 'setHeaders with an empty value removes the client\'s header',
      location: '/empty/',
      target: 'http://backend',
      options: { setHeaders: { 'Accept-Encoding': '', 'X-Drop': '$http_x_none' } },
      headers: [['Accept-Encoding', 'gzip'], ['X-Drop', '1'], ['X-Keep', '2']],
      want: { 'accept-encoding': [], 'x-drop': [], 'x-keep': ['2'] }
    },
    {
      rule: 'setHeaders replaces every copy the client sent, in any case',
      location: '/set/',
      target: 'http://backend',
      options: { setHeaders: { 'X-One': 'ours $remote_addr' } },
      headers: [['X-One', 'a'], ['x-one', 'b']],
      want: { 'x-one': ['ours 127.0.0.1'] }
    },
    // hop-by-hop
    {
      rule: 'hop-by-hop headers and the headers Connection names are removed',
      location: '/up/',
      target: 'http://backend',
      headers: [['Connection', 'close, X-Hop-Named'], ['X-Hop-Named', '1'], ['Keep-Alive', 'timeout=300'], ['Proxy-Connection', 'keep-alive'],
        ['TE', 'trailers'], ['Trailer', 'X-Trail'], ['Upgrade', 'h2c'], ['X-End-To-End', 'yes']],
      want: {
        'x-hop-named': [], 'keep-alive': [], 'proxy-connection': [], te: [], trailer: [], upgrade: [], 'x-end-to-end': ['yes'],
        connection: ['keep-alive']
      },
      differs: 'the upstream gets undici\'s "connection: keep-alive" (nginx: "Connection: close", an HTTP/1.0 request per connection)'
    },
    {
      rule: 'Expect is removed (proxyctl answers 100-continue itself); the body still arrives',
      location: '/up/',
      target: 'http://backend',
      method: 'POST',
      headers: [['Expect', '100-continue']],
      body: 'hello world',
      want: { expect: [], 'content-length': ['11'] },
      bodyBytes: 11
    },
    {
      rule: 'the client\'s Transfer-Encoding is not copied: the body goes with one framing of ours',
      location: '/up/',
      target: 'http://backend',
      method: 'POST',
      headers: [['Transfer-Encoding', 'chunked']],
      body: '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
      want: {},
      // undici sends Content-Length when the whole body is already in (as nginx, which buffers it),
      // chunked otherwise: either is one framing, never the client's header copied on top.
      framing: 11,
      bodyBytes: 11
    },
    {
      rule: 'Content-Length of a request body is kept',
      location: '/up/',
      target: 'http://backend',
      method: 'PUT',
      body: 'x'.repeat(1000),
      want: { 'content-length': ['1000'], 'transfer-encoding': [] },
      bodyBytes: 1000
    },
    // duplicates, case
    {
      rule: 'duplicate headers and the case of names are kept, in order',
      location: '/up/',
      target: 'http://backend',
      headers: [['X-Dup', 'a'], ['x-dup', 'b'], ['X-MiXeD-Case', 'v'], ['Cookie', 'a=1'], ['Cookie', 'b=2']],
      want: { 'x-dup': ['a', 'b'], cookie: ['a=1', 'b=2'] },
      lines: [['X-Dup', 'a'], ['x-dup', 'b'], ['X-MiXeD-Case', 'v'], ['Cookie', 'a=1'], ['Cookie', 'b=2']]
    },
    { rule: 'no X-Forwarded-* or Forwarded by default (as nginx)', location: '/up/', target: 'http://backend', want: { 'x-forwarded-for': [], 'x-forwarded-proto': [], 'x-forwarded-host': [], forwarded: [] } },
    { rule: 'a client\'s X-Forwarded-For passes untouched by default', location: '/up/', target: 'http://backend', headers: [['X-Forwarded-For', '10.0.0.1']], want: { 'x-forwarded-for': ['10.0.0.1'] } },
    // X-Forwarded-For
    { rule: '$proxy_add_x_forwarded_for without an incoming XFF: the client address', location: '/xff/', target: 'http://backend', options: { setHeaders: { 'X-Forwarded-For': '$proxy_add_x_forwarded_for' } }, want: { 'x-forwarded-for': ['127.0.0.1'] } },
    { rule: '$proxy_add_x_forwarded_for with an incoming XFF: appended', location: '/xff/', target: 'http://backend', options: { setHeaders: { 'X-Forwarded-For': '$proxy_add_x_forwarded_for' } }, headers: [['X-Forwarded-For', '10.0.0.1']], want: { 'x-forwarded-for': ['10.0.0.1, 127.0.0.1'] } },
    { rule: '$proxy_add_x_forwarded_for with two incoming XFF headers: joined, one header sent', location: '/xff/', target: 'http://backend', options: { setHeaders: { 'X-Forwarded-For': '$proxy_add_x_forwarded_for' } }, headers: [['X-Forwarded-For', '10.0.0.1'], ['x-forwarded-for', '10.0.0.2']], want: { 'x-forwarded-for': ['10.0.0.1, 10.0.0.2, 127.0.0.1'] } },
    { rule: '$proxy_add_x_forwarded_for from a client over [::1]', location: '/xff/', target: 'http://backend', options: { setHeaders: { 'X-Forwarded-For': '$proxy_add_x_forwarded_for' } }, via: 'v6', want: { 'x-forwarded-for': ['::1'] } },
    { rule: '$proxy_add_x_forwarded_for from a client over a unix socket: "unix:"', location: '/xff/', target: 'http://backend', options: { setHeaders: { 'X-Forwarded-For': '$proxy_add_x_forwarded_for' } }, via: 'unix', headers: [['X-Forwarded-For', '10.0.0.1']], want: { 'x-forwarded-for': ['10.0.0.1, unix:'] } },
    // opt-in X-Forwarded-Proto/-Host, Forwarded
    {
      rule: 'xForwarded: true adds X-Forwarded-For, -Proto ($scheme) and -Host ($http_host)',
      location: '/xf/',
      target: 'http://backend',
      options: { xForwarded: true },
      host: 'Example.com:8080',
      headers: [['X-Forwarded-Proto', 'https'], ['X-Forwarded-Host', 'spoofed']],
      want: { 'x-forwarded-for': ['127.0.0.1'], 'x-forwarded-proto': ['http'], 'x-forwarded-host': ['Example.com:8080'] }
    },
    {
      rule: 'xForwarded: { proto: true } adds only X-Forwarded-Proto',
      location: '/xfp/',
      target: 'http://backend',
      options: { xForwarded: { proto: true } },
      want: { 'x-forwarded-for': [], 'x-forwarded-proto': ['http'], 'x-forwarded-host': [] }
    },
    { rule: 'forwarded: true gives RFC 7239 Forwarded', location: '/fw/', target: 'http://backend', options: { forwarded: true }, host: 'example.com', want: { forwarded: ['for=127.0.0.1;host=example.com;proto=http'] } },
    { rule: 'forwarded: an IPv6 client is quoted and bracketed, so is a Host with a port in brackets', location: '/fw/', target: 'http://backend', options: { forwarded: true }, via: 'v6', host: '[::1]:{port}', want: { forwarded: ['for="[::1]";host="[::1]:{port}";proto=http'] } },
    { rule: 'forwarded: appended to the client\'s Forwarded', location: '/fw/', target: 'http://backend', options: { forwarded: true }, host: 'example.com', headers: [['Forwarded', 'for=192.0.2.60;proto=https']], want: { forwarded: ['for=192.0.2.60;proto=https, for=127.0.0.1;host=example.com;proto=http'] } },
    { rule: 'forwarded: a client over a unix socket is "unknown" (RFC 7239 6.3)', location: '/fw/', target: 'http://backend', options: { forwarded: true }, via: 'unix', host: 'example.com', want: { forwarded: ['for=unknown;host=example.com;proto=http'] } }
  ]

  const locations: Record<string, ReturnType<typeof proxy>> = {}
  for (const r of rows) locations[r.location] ??= proxy(r.target, r.options)
  const config: ProxyConfig = {
    upstreams: { backend: { servers: [v4.address] }, sock: { servers: [unix.address] } },
    servers: [{ listen: ['127.0.0.1:0', '[::1]:0', `unix:${proxySock}`], serverName: 'localhost', locations }]
  }
  const proxyctl = await startConfig(t, config)
  const via: Record<string, Target> = { v4: targetOf(urlOf(proxyctl, 0)), v6: targetOf(urlOf(proxyctl, 1)), unix: { socketPath: proxySock } }

  for (const row of rows) {
    const to = via[row.via ?? 'v4'] as Target
    const fill = (s: string): string => s.replaceAll('{port}', String(to.port))
    const r = await exchange(to, row.location + 'x', {
      host: row.host === null ? null : fill(row.host ?? 'localhost'),
      ...(row.method !== undefined ? { method: row.method } : {}),
      ...(row.version !== undefined ? { version: row.version } : {}),
      ...(row.body !== undefined ? { body: row.body } : {}),
      headers: row.headers ?? []
    })
    const name = row.differs === undefined ? row.rule : `${row.rule} (differs from nginx: ${row.differs})`
    if (r.status !== 200) { t.fail(`${name}: proxyctl answered ${r.status} ${r.body.slice(0, 100)}`); continue }
    const echo = JSON.parse(r.body) as Echoed
    for (const [h, values] of Object.entries(row.want)) {
      t.strictSame(headerValues(echo.headers, h), values.map(fill), `${name}: ${h}: ${JSON.stringify(values.map(fill))}`)
    }
    if (row.lines !== undefined) {
      const names = new Set(row.lines.map(([n]) => n.toLowerCase()))
      t.strictSame(echo.headers.filter(([n]) => names.has(n.toLowerCase())), row.lines, `${name}: header lines as sent`)
    }
    if (row.framing !== undefined) {
      const framing = [...headerValues(echo.headers, 'content-length').map(v => `content-length: ${v}`), ...headerValues(echo.headers, 'transfer-encoding').map(v => `transfer-encoding: ${v}`)]
      t.ok(framing.length === 1 && (framing[0] === `content-length: ${row.framing}` || framing[0] === 'transfer-encoding: chunked'), `${name}: one framing (${framing.join(', ')})`)
    }
    if (row.bodyBytes !== undefined) t.equal(echo.bodyBytes, row.bodyBytes, `${name}: ${row.bodyBytes} body bytes`)
  }
  t.ok(rows.length >= 25, `${rows.length} request-header rows`)
})

/* ------------------------------------------------------------------ response headers */

interface ResponseRow {
  rule: string
  /** Location the request goes to: `/up/` (defaults) or `/opt/` (hideHeaders/passHeaders). */
  location?: '/up/' | '/opt/'
  method?: string
  requestHeaders?: Array<[string, string]>
  /** What the upstream answers, raw. */
  reply: RawReply
  status: number
  /** Header name → values the client gets ([] = absent). */
  want: Record<string, string[]>
  lines?: Array<[string, string]>
  body?: string
  /** The body bytes as framed on the wire (after the header block). */
  rawBody?: string
  check?: (r: Awaited<ReturnType<typeof exchange>>) => void
  todo?: string
}

const ok = (head: string, body = ''): string =>
  `HTTP/1.1 200 OK\r\n${head}Content-Length: ${body.length}\r\n\r\n${body}`

t.test('response headers: upstream → proxyctl → client', async t => {
  const rows: ResponseRow[] = [
    {
      rule: 'hop-by-hop headers and the headers Connection names are removed',
      reply: ok('Connection: X-Named, keep-alive\r\nX-Named: 1\r\nKeep-Alive: timeout=30\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-Kept: yes\r\n', 'ok'),
      status: 200,
      want: { 'x-named': [], 'keep-alive': [], 'proxy-connection': [], te: [], trailer: [], upgrade: [], 'x-kept': ['yes'], connection: ['close'] },
      body: 'ok'
    },
    {
      rule: 'the upstream\'s Date is replaced by ours',
      reply: ok('Date: Mon, 01 Jan 2001 00:00:00 GMT\r\n', 'ok'),
      status: 200,
      want: {},
      check: (r) => {
        const dates = headerValues(r.headers, 'date')
        t.equal(dates.length, 1, 'the upstream\'s Date is replaced by ours: one Date')
        t.ok(Math.abs(Date.parse(dates[0] ?? '') - Date.now()) < 60_000, `the upstream's Date is replaced by ours: now (${dates[0]})`)
      }
    },
    {
      rule: 'a Date is sent when the upstream sends none',
      reply: ok('', 'ok'),
      status: 200,
      want: {},
      check: (r) => { t.equal(headerValues(r.headers, 'date').length, 1, 'a Date is sent when the upstream sends none') }
    },
    {
      rule: 'Server, X-Pad and X-Accel-* are hidden',
      reply: ok('Server: upstream/1.0\r\nX-Pad: avoid browser bug\r\nX-Accel-Expires: 10\r\nX-Accel-Limit-Rate: 1024\r\nX-Accel-Buffering: no\r\nX-Accel-Charset: utf-8\r\nX-Other: 1\r\n', 'ok'),
      status: 200,
      want: { server: [], 'x-pad': [], 'x-accel-expires': [], 'x-accel-limit-rate': [], 'x-accel-buffering': [], 'x-accel-charset': [], 'x-other': ['1'] }
    },
    {
      rule: 'X-Accel-Redirect: nginx does an internal redirect to it',
      reply: ok('X-Accel-Redirect: /elsewhere\r\n', 'from upstream'),
      status: 200,
      want: { 'x-accel-redirect': [] },
      body: 'the X-Accel-Redirect target'
    },
    {
      rule: 'X-Accel-Redirect in ignoreHeaders: the upstream\'s answer passes, the header hidden',
      location: '/ign/',
      reply: ok('X-Accel-Redirect: /elsewhere\r\n', 'from upstream'),
      status: 200,
      want: { 'x-accel-redirect': [] },
      body: 'from upstream'
    },
    {
      rule: 'X-Accel-Redirect in ignoreHeaders and passHeaders: the client sees it',
      location: '/ignp/',
      reply: ok('X-Accel-Redirect: /elsewhere\r\n', 'from upstream'),
      status: 200,
      want: { 'x-accel-redirect': ['/elsewhere'] },
      body: 'from upstream'
    },
    {
      rule: 'hideHeaders hides more',
      location: '/opt/',
      reply: ok('X-Secret: s\r\nX-Other: 1\r\n', 'ok'),
      status: 200,
      want: { 'x-secret': [], 'x-other': ['1'] }
    },
    {
      rule: 'hideHeaders applies only where it is set',
      reply: ok('X-Secret: s\r\n', 'ok'),
      status: 200,
      want: { 'x-secret': ['s'] }
    },
    {
      rule: 'passHeaders lets a hidden header through',
      location: '/opt/',
      reply: ok('Server: upstream/1.0\r\nX-Accel-Expires: 10\r\nX-Pad: p\r\n', 'ok'),
      status: 200,
      want: { server: ['upstream/1.0'], 'x-accel-expires': ['10'], 'x-pad': [] }
    },
    {
      rule: 'Set-Cookie duplicates are kept in order, as other duplicates, with their case',
      reply: ok('Set-Cookie: a=1; Path=/\r\nset-cookie: b=2\r\nX-Multi: 1\r\nX-Multi: 2\r\nX-CaSe: v\r\n', 'ok'),
      status: 200,
      want: { 'set-cookie': ['a=1; Path=/', 'b=2'], 'x-multi': ['1', '2'] },
      lines: [['Set-Cookie', 'a=1; Path=/'], ['set-cookie', 'b=2'], ['X-Multi', '1'], ['X-Multi', '2'], ['X-CaSe', 'v']]
    },
    {
      rule: 'Content-Length is kept, the body is not chunked',
      reply: ok('Content-Type: text/plain\r\n', 'hello'),
      status: 200,
      want: { 'content-length': ['5'], 'transfer-encoding': [], 'content-type': ['text/plain'] },
      body: 'hello',
      rawBody: 'hello'
    },
    {
      rule: 'a chunked upstream response is re-chunked correctly (extensions dropped)',
      reply: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
      status: 200,
      want: { 'transfer-encoding': ['chunked'], 'content-length': [] },
      body: 'hello world',
      check: (r) => { t.ok(r.rawBody.endsWith('0\r\n\r\n') && !r.rawBody.includes('ext='), 'a chunked upstream response is re-chunked correctly: framed, last chunk sent') }
    },
    {
      rule: 'a close-delimited upstream body (HTTP/1.0, no length) is sent chunked',
      reply: { bytes: 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end', close: true },
      status: 200,
      want: { 'transfer-encoding': ['chunked'] },
      body: 'until the end'
    },
    {
      rule: 'HEAD: the upstream\'s Content-Length, no body',
      method: 'HEAD',
      reply: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n',
      status: 200,
      want: { 'content-length': ['100'], 'transfer-encoding': [] },
      rawBody: ''
    },
    {
      rule: '204: no body, no framing headers added',
      reply: 'HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n',
      status: 204,
      want: { 'x-a': ['1'], 'transfer-encoding': [], 'content-length': [] },
      rawBody: ''
    },
    {
      rule: '304: validators kept, no body',
      requestHeaders: [['If-None-Match', '"abc"']],
      reply: 'HTTP/1.1 304 Not Modified\r\nETag: "abc"\r\nCache-Control: max-age=60\r\n\r\n',
      status: 304,
      want: { etag: ['"abc"'], 'cache-control': ['max-age=60'], 'transfer-encoding': [] },
      rawBody: ''
    },
    {
      rule: 'an upstream status and its headers pass (404 with a body)',
      reply: 'HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\nnot here\n',
      status: 404,
      want: { 'content-type': ['text/html'], 'content-length': ['9'] },
      body: 'not here\n'
    }
  ]

  const up = await startRawUpstream(t, {}, (req: RawRequest) => {
    const m = /\/r(\d+)$/.exec(req.target)
    const row = m === null ? undefined : rows[Number(m[1])]
    return row === undefined ? lineEcho(req) : row.reply
  })
  const config: ProxyConfig = {
    upstreams: { backend: { servers: [up.address] } },
    servers: [{
      listen: ['127.0.0.1:0'],
      serverName: 'localhost',
      locations: {
        '/up/': proxy('http://backend'),
        '= /elsewhere': respond(200, 'the X-Accel-Redirect target'),
        '/opt/': proxy('http://backend', { hideHeaders: ['X-Secret'], passHeaders: ['Server', 'X-Accel-Expires'] }),
        '/ign/': proxy('http://backend', { ignoreHeaders: ['X-Accel-Redirect'] }),
        '/ignp/': proxy('http://backend', { ignoreHeaders: ['X-Accel-Redirect'], passHeaders: ['X-Accel-Redirect'] })
      }
    }]
  }
  const to = targetOf(urlOf(await startConfig(t, config)))

  for (const [i, row] of rows.entries()) {
    const method = row.method ?? 'GET'
    const r = await exchange(to, `${row.location ?? '/up/'}r${i}`, { method, headers: row.requestHeaders ?? [] })
    t.equal(r.status, row.status, `${row.rule}: status ${row.status}`)
    for (const [h, values] of Object.entries(row.want)) t.strictSame(headerValues(r.headers, h), values, `${row.rule}: ${h}: ${JSON.stringify(values)}`)
    if (row.lines !== undefined) {
      const names = new Set(row.lines.map(([n]) => n.toLowerCase()))
      t.strictSame(r.headers.filter(([n]) => names.has(n.toLowerCase())), row.lines, `${row.rule}: header lines as sent`)
    }
    if (row.body !== undefined) t.equal(r.body, row.body, `${row.rule}: body`, row.todo === undefined ? {} : { todo: row.todo })
    if (row.rawBody !== undefined) t.equal(r.rawBody, row.rawBody, `${row.rule}: bytes after the header block`)
    row.check?.(r)
  }
  t.equal(up.seen.length, rows.length, 'every row reached the upstream once')
})
