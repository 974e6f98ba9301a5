// Every variable, rendered by respond() through a real proxyctl listening on 127.0.0.1 and [::1].
import t from 'tap'
import { respond } from '@proxyctl/core'
import { request, startConfig, targetOf, urlOf } from '../helpers/proxy.js'
import { rawExchange, type Target } from '../helpers/raw-http.js'

interface Case {
  rule: string
  template: string
  path: string
  headers?: Record<string, string>
  method?: string
  /** Listener 0 is 127.0.0.1, 1 is [::1]. */
  listener?: 0 | 1
  expect: string | ((target: Target) => string)
}

const cases: Case[] = [
  { rule: '$uri is decoded, slashes merged, dots resolved', template: '$uri', path: '/v/a%20b//c/./d/../e?x=1', expect: '/v/a b/c/e' },
  { rule: '$request_uri is the raw target with query', template: '$request_uri', path: '/v/a%20b//c/./d?x=1', expect: '/v/a%20b//c/./d?x=1' },
  { rule: '$args is the raw query', template: '$args', path: '/v/?x=1&Y=%20', expect: 'x=1&Y=%20' },
  { rule: '$args is empty without a query', template: '[$args]', path: '/v/', expect: '[]' },
  { rule: '$arg_NAME is the first raw value', template: '$arg_x', path: '/v/?x=1&x=2', expect: '1' },
  { rule: '$arg_NAME matches names case-insensitively, stays encoded', template: '$arg_y', path: '/v/?Y=a%20b', expect: 'a%20b' },
  { rule: '$arg_NAME of a missing arg is empty', template: '[$arg_zz]', path: '/v/?x=1', expect: '[]' },
  { rule: '$is_args is ? with a query', template: '$is_args', path: '/v/?a', expect: '?' },
  { rule: '$is_args is empty without a query', template: '[$is_args]', path: '/v/', expect: '[]' },
  { rule: '$host is lower-cased, without port', template: '$host', path: '/v/', headers: { host: 'Example.COM:8080' }, expect: 'example.com' },
  { rule: '$host drops a trailing dot', template: '$host', path: '/v/', headers: { host: 'example.com.' }, expect: 'example.com' },
  { rule: '$http_host is the Host header as sent', template: '$http_host', path: '/v/', headers: { host: 'Example.COM:8080' }, expect: 'Example.COM:8080' },
  { rule: '$http_NAME reads any header, dashes as underscores', template: '$http_x_custom_header', path: '/v/', headers: { 'X-Custom-Header': 'abc' }, expect: 'abc' },
  { rule: '$http_NAME of a missing header is empty', template: '[$http_x_missing]', path: '/v/', expect: '[]' },
  { rule: '$http_user_agent', template: '$http_user_agent', path: '/v/', headers: { 'user-agent': 'tap/1' }, expect: 'tap/1' },
  { rule: '$cookie_NAME reads one cookie', template: '$cookie_session', path: '/v/', headers: { cookie: 'a=1; session=xyz; b=2' }, expect: 'xyz' },
  { rule: '$cookie_NAME of a missing cookie is empty', template: '[$cookie_nope]', path: '/v/', headers: { cookie: 'a=1' }, expect: '[]' },
  { rule: '$remote_addr over IPv4', template: '$remote_addr', path: '/v/', expect: '127.0.0.1' },
  { rule: '$remote_addr over IPv6', template: '$remote_addr', path: '/v/', listener: 1, expect: '::1' },
  { rule: '$remote_port is the client port', template: '$remote_port', path: '/v/', expect: 'PORT' },
  { rule: '$scheme', template: '$scheme', path: '/v/', expect: 'http' },
  { rule: '$server_name is the first name of the server', template: '$server_name', path: '/v/', expect: 'example.com' },
  { rule: '$server_port is the listener port', template: '$server_port', path: '/v/', expect: (tg) => String(tg.port) },
  { rule: '$request_method', template: '$request_method', path: '/v/', method: 'PATCH', expect: 'PATCH' },
  { rule: '$proxy_add_x_forwarded_for without X-Forwarded-For is $remote_addr', template: '$proxy_add_x_forwarded_for', path: '/v/', expect: '127.0.0.1' },
  { rule: '$proxy_add_x_forwarded_for appends to X-Forwarded-For', template: '$proxy_add_x_forwarded_for', path: '/v/', headers: { 'x-forwarded-for': '203.0.113.9' }, expect: '203.0.113.9, 127.0.0.1' },
  { rule: '$1 and $2 are regex location captures', template: '$2-$1', path: '/re/abc/def', expect: 'def-abc' },
  { rule: '$1 is followed by literal digits-free text', template: '$1abc', path: '/re/x/y', expect: 'xabc' },
  { rule: 'named captures are variables', template: '$first+$second', path: '/named/one/two', expect: 'one+two' },
  { rule: '${name} ends a name early', template: '${uri}suffix', path: '/v/z', expect: '/v/zsuffix' },
  { rule: 'literal text around variables is kept', template: 'm=$request_method u=$uri', path: '/v/q', expect: 'm=GET u=/v/q' }
]

function locationFor (path: string): string {
  if (path.startsWith('/re/')) return '~ ^/re/(\\w+)/(\\w+)$'
  if (path.startsWith('/named/')) return '~ ^/named/(?<first>\\w+)/(?<second>\\w+)$'
  return '/v/'
}

t.test('variables through a real server', async (t) => {
  // A proxy per case: each case's template is its own config.
  for (const [i, c] of cases.entries()) {
    const proxy = await startConfig(t, {
      servers: [{
        listen: ['127.0.0.1:0', '[::1]:0'],
        serverName: ['example.com', '*.example.com'],
        locations: { [locationFor(c.path)]: respond(200, c.template) }
      }]
    })
    const target = targetOf(urlOf(proxy, c.listener ?? 0))
    let clientPort = 0
    const res = await new Promise<{ status: number, body: string }>((resolve, reject) => {
      import('node:http').then(({ default: http }) => {
        const req = http.request({ host: target.host, port: target.port, path: c.path, method: c.method ?? 'GET', headers: c.headers ?? {}, agent: false }, (r) => {
          let body = ''
          r.on('data', (d) => { body += d })
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }))
        })
        req.on('socket', (s) => s.on('connect', () => { clientPort = s.localPort ?? 0 }))
        req.on('error', reject)
        req.end()
      }, reject)
    })
    const expected = typeof c.expect === 'function' ? c.expect(target) : c.expect === 'PORT' ? String(clientPort) : c.expect
    t.equal(res.status, 200, `${c.rule}: status`)
    t.equal(res.body, expected, `${i}: ${c.rule}`)
    await proxy.close(0)
  }
})

t.test('$host falls back to $server_name without a Host header (HTTP/1.0)', async (t) => {
  const proxy = await startConfig(t, {
    servers: [{ listen: '127.0.0.1:0', serverName: 'fallback.example', locations: { '/': respond(200, '$host') } }]
  })
  const res = await request(targetOf(urlOf(proxy)), { path: '/', setHost: false, headers: {} })
  // node:http sends HTTP/1.1; use a raw HTTP/1.0 exchange instead for the no-Host case.
  t.equal(res.status, 400, 'HTTP/1.1 without Host is 400')
  const raw = await rawExchange(targetOf(urlOf(proxy)), 'GET / HTTP/1.0\r\n\r\n')
  t.match(raw, /^HTTP\/1\.1 200/, 'HTTP/1.0 without Host is served')
  t.match(raw, /\r\n\r\nfallback\.example$/, '$host is the server name')
})
