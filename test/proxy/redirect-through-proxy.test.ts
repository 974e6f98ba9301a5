/**
 * proxy_redirect through a real proxyctl: a real upstream answers with the `Location` or `Refresh`
 * header the request asks for (`?h=location&v=...`, as fixtures/nginx-compare.ts's echo server),
 * and the client must get what nginx 1.22.1 sent for the same config (fixtures/redirect-cases.ts).
 * As in nginx, a rewritten Location starting with "/" is made absolute with the request's Host
 * name and the listener's port; Refresh is never made absolute.
 */
import path from 'node:path'
import t from 'tap'
import type { ProxyConfig } from '@proxyctl/core'
import { proxy } from '@proxyctl/plugins'
import { startConfig, targetOf, tmpDir, urlOf } from '../helpers/proxy.js'
import { startUpstream, type UpstreamHandler } from '../helpers/upstream.js'
import { exchange, headerValues, type Target } from '../helpers/raw-http.js'
import { redirectScenarios, toOption } from './fixtures/redirect-cases.js'

/** Answers `?s=STATUS&h=NAME&v=VALUE` (each may repeat: several headers) with those headers. */
const redirector: UpstreamHandler = (req, res, up) => {
  const url = new URL(req.url ?? '/', 'http://x')
  up.seen.push({ name: up.name, method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: 0 })
  const names = url.searchParams.getAll('h')
  const values = url.searchParams.getAll('v')
  const headers: string[] = []
  names.forEach((h, i) => headers.push(h, values[i] ?? ''))
  res.writeHead(Number(url.searchParams.get('s') ?? 302), [...headers, 'Content-Length', '2'])
  res.end('ok')
}

function query (pairs: Array<[string, string]>, status?: number): string {
  const q = new URLSearchParams()
  if (status !== undefined) q.append('s', String(status))
  for (const [h, v] of pairs) { q.append('h', h); q.append('v', v) }
  return '?' + q.toString()
}

let count = 0

for (const regexObjects of [false, true]) {
  t.test(`proxy_redirect through proxyctl: the nginx table${regexObjects ? ' (regex rules as RegExp objects)' : ''}`, async t => {
    const up = await startUpstream(t, 'backend', { port: 0 }, redirector)
    const locations: Record<string, ReturnType<typeof proxy>> = {}
    for (const sc of redirectScenarios) {
      const option = toOption(sc.option, regexObjects)
      locations[sc.location] = proxy(sc.target, option === undefined ? {} : { redirect: option })
    }
    const config: ProxyConfig = {
      upstreams: { backend: { servers: [up.address] } },
      servers: [{ listen: ['127.0.0.1:0'], serverName: 'localhost', locations }]
    }
    const to = targetOf(urlOf(await startConfig(t, config)))
    for (const sc of redirectScenarios) {
      for (const c of sc.cases) {
        if (!regexObjects) count++
        const r = await exchange(to, (c.request ?? sc.request) + query([[c.header, c.value]]))
        const want = c.expect === null
          ? c.value
          : c.header === 'location' && c.expect.startsWith('/') ? `http://localhost:${to.port}${c.expect}` : c.expect
        t.equal(r.status, 302, `${sc.name} / ${c.rule}: 302 passed on`)
        t.strictSame(headerValues(r.headers, c.header), [want], `${sc.name} / ${c.rule}: ${c.header} ${c.value} → ${want}`)
      }
    }
  })
}

t.test('proxy_redirect through proxyctl: more cases', async t => {
  const dir = tmpDir(t)
  const sock = path.join(dir, 'app.sock')
  const tcp = await startUpstream(t, 'backend', { port: 0 }, redirector)
  await startUpstream(t, 'app', { path: sock }, redirector)
  const config: ProxyConfig = {
    upstreams: { backend: { servers: [tcp.address] }, app: { servers: [`unix:${sock}`] } },
    servers: [{
      listen: ['127.0.0.1:0', '[::1]:0'],
      serverName: 'localhost',
      locations: {
        '/d/': proxy('http://backend/'),
        '/off/': proxy('http://app', { redirect: false, setHeaders: { Host: '$http_host' } }),
        '/app/': proxy('http://app'),
        '~ ^/cap/(\\w+)/': proxy('http://backend', { redirect: [{ from: 'http://backend/', to: '/cap/$1/' }] }),
        '/vars/': proxy('http://backend', { redirect: [{ from: 'http://$host:$server_port/', to: '/vars/' }, { from: '~^https?://(?<h>[^/]+)/up/(.*)$', to: '$scheme://$h/down/$2' }] })
      }
    }]
  }
  const proxyctl = await startConfig(t, config)
  const v4 = targetOf(urlOf(proxyctl, 0))
  const v6 = targetOf(urlOf(proxyctl, 1))
  const port = v4.port as number

  interface Row { rule: string, to?: Target, request: string, host?: string, status?: number, headers: Array<[string, string]>, want: Record<string, string[]> }
  const rows: Row[] = [
    {
      rule: 'default: Location and Refresh of one response are both rewritten',
      request: '/d/x',
      headers: [['Location', 'http://backend/a'], ['Refresh', '0; url=http://backend/b']],
      want: { location: [`http://localhost:${port}/d/a`], refresh: ['0; url=/d/b'] }
    },
    {
      rule: 'default: the absolute Location takes the Host name the client sent (port dropped) and the listener\'s port',
      request: '/d/x',
      host: 'Other.Example:1234',
      headers: [['Location', 'http://backend/a?q=1']],
      want: { location: [`http://other.example:${port}/d/a?q=1`] }
    },
    {
      rule: 'default: a client over [::1] with an IPv6 literal Host gets it back in brackets, with the listener\'s port',
      to: v6,
      request: '/d/x',
      host: `[::1]:${v6.port}`,
      headers: [['Location', 'http://backend/z']],
      want: { location: [`http://[::1]:${v6.port}/d/z`] }
    },
    {
      rule: 'default applies to any status with a Location (201 Created)',
      request: '/d/x',
      status: 201,
      headers: [['Location', 'http://backend/new/1']],
      want: { location: [`http://localhost:${port}/d/new/1`] }
    },
    {
      rule: 'default for an upstream on a unix socket: its name (the Host it got) becomes "/"',
      request: '/app/x',
      headers: [['Location', 'http://app/login']],
      want: { location: [`http://localhost:${port}/login`] }
    },
    {
      rule: 'off (the article\'s proxy_redirect off with Host $http_host): an absolute Location is left alone',
      request: '/off/x',
      host: 'www.rails365.net',
      headers: [['Location', 'http://www.rails365.net/articles']],
      want: { location: ['http://www.rails365.net/articles'] }
    },
    {
      rule: 'off: a relative Location stays relative',
      request: '/off/x',
      headers: [['Location', '/relative'], ['Refresh', '3; url=http://app/r']],
      want: { location: ['/relative'], refresh: ['3; url=http://app/r'] }
    },
    {
      rule: 'a string rule whose `to` uses the regex location\'s capture $1',
      request: '/cap/abc/x',
      headers: [['Location', 'http://backend/y']],
      want: { location: [`http://localhost:${port}/cap/abc/y`] }
    },
    {
      rule: 'a string rule with variables in `from` ($host:$server_port)',
      request: '/vars/x',
      host: `localhost:${port}`,
      headers: [['Location', `http://localhost:${port}/p?q`]],
      want: { location: [`http://localhost:${port}/vars/p?q`] }
    },
    {
      rule: 'a regex rule: named capture, numbered capture and $scheme in `to`, the whole value replaced',
      request: '/vars/x',
      headers: [['Location', 'https://cdn.example/up/a/b?c']],
      want: { location: ['http://cdn.example/down/a/b?c'] }
    },
    {
      rule: 'no rule matches: the Location passes unchanged, even relative',
      request: '/vars/x',
      headers: [['Location', '/not-rewritten']],
      want: { location: ['/not-rewritten'] }
    }
  ]
  for (const row of rows) {
    count++
    const r = await exchange(row.to ?? v4, row.request + query(row.headers.map(([h, v]) => [h.toLowerCase(), v]), row.status), { host: row.host ?? 'localhost' })
    t.equal(r.status, row.status ?? 302, `${row.rule}: status`)
    for (const [h, values] of Object.entries(row.want)) t.strictSame(headerValues(r.headers, h), values, `${row.rule}: ${h}`)
  }
})

t.test('proxy_redirect: table size', async t => {
  t.ok(count >= 30, `${count} redirect cases through proxyctl`)
})
