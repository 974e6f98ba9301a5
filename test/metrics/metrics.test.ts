// `metrics.listen`: a scrape during real traffic (an upstream, a static file, a 404, a 502, a
// WebSocket tunnel, a limit refusal) answers each family with what was sent.
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { metrics } from '@proxyctl/core'
import { proxy, serveStatic, websocket } from '@proxyctl/plugins'
import { startConfig, targetOf, request, urlOf, tmpDir } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'
import { openWs, startWsUpstream } from '../helpers/ws.js'
import { waitFor } from '../helpers/lifecycle.js'
import { parseScrape, value } from './fixtures/scrape.js'
import { freePort } from '../helpers/failure.js'

async function scrape (url: string, p = '/metrics'): Promise<{ status: number, type: string, body: string }> {
  const res = await fetch(url + p)
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() }
}

t.test('a scrape counts what was sent, family by family', async (t) => {
  const root = tmpDir(t)
  fs.mkdirSync(path.join(root, 'files'))
  fs.writeFileSync(path.join(root, 'files', 'a.txt'), 'static file\n')
  const app = await startUpstream(t, 'app', {})
  const ws = await startWsUpstream(t, {})
  const dead = await freePort()
  const p = await startConfig(t, {
    metrics: { listen: 0 },
    upstreams: { app: { servers: [app.address] }, gone: { servers: [`127.0.0.1:${dead}`] } },
    clientMaxBodySize: '10',
    servers: [{
      listen: '127.0.0.1:0',
      serverName: 'site.test',
      root,
      locations: {
        '/api/': proxy('http://app'),
        '/gone/': proxy('http://gone'),
        '/files/': serveStatic(),
        '= /ws': websocket(ws.target),
        '= /here-metrics': metrics()
      }
    }]
  } as never)
  t.ok(p.metrics?.url.startsWith('http://127.0.0.1:'), 'the metrics listener is 127.0.0.1 for a port alone')
  const target = targetOf(urlOf(p))
  const sent = [
    { path: '/api/x', status: 200 },
    { path: '/api/y', status: 200 },
    { path: '/files/a.txt', status: 200 },
    { path: '/nothing', status: 404 },
    { path: '/gone/z', status: 502 }
  ]
  for (const s of sent) t.equal((await request(target, { path: s.path })).status, s.status, `${s.path} answers ${s.status}`)
  t.equal((await request(target, { method: 'POST', path: '/api/big', body: 'x'.repeat(100) })).status, 413, 'a body over clientMaxBodySize is 413')
  const sock = await openWs(t, urlOf(p).replace('http', 'ws') + '/ws')

  const live = parseScrape((await scrape(p.metrics?.url as string)).body)
  t.equal(value(live, 'proxyctl_websocket_tunnels', { server: 'site.test', location: '= /ws' }), 1, 'an open tunnel is counted while it is open')
  sock.close()
  await waitFor(() => ws.clients.size === 0, 3000)
  await new Promise((r) => setTimeout(r, 100))

  const res = await scrape(p.metrics?.url as string)
  t.equal(res.status, 200)
  t.match(res.type, /^text\/plain; version=0\.0\.4/)
  const m = parseScrape(res.body)
  const req = (location: string, status: string): number => value(m, 'proxyctl_requests_total', { server: 'site.test', location, status })
  const cases: Array<[string, number, number]> = [
    ['two proxied 200s count in their location', req('/api/', '2xx'), 2],
    ['the 413 refused at the front door counts in the location it was for', req('/api/', '4xx'), 1],
    ['a static file counts in its location', req('/files/', '2xx'), 1],
    ['a 404 no location answered counts in the server', req('', '4xx'), 1],
    ['a 502 counts as 5xx in its location', req('/gone/', '5xx'), 1],
    ['a tunnel counts its 101 once it closes', req('= /ws', '1xx'), 1],
    ['request durations: one per answer but the tunnel', value(m, 'proxyctl_request_duration_seconds_count', { server: 'site.test' }), 6],
    ['upstream tries at app: two 2xx', value(m, 'proxyctl_upstream_tries_total', { upstream: 'app', server: app.address, status: '2xx' }), 2],
    ['upstream response times at app: two', value(m, 'proxyctl_upstream_response_time_seconds_count', { upstream: 'app', server: app.address }), 2],
    ['the failed try at gone is a 5xx try', value(m, 'proxyctl_upstream_tries_total', { upstream: 'gone', server: `127.0.0.1:${dead}`, status: '5xx' }), 1],
    ['app is up', value(m, 'proxyctl_upstream_server_state', { upstream: 'app', server: app.address, backup: 'false', state: 'up' }), 1],
    ['gone is up: a single server is never marked failed, as nginx', value(m, 'proxyctl_upstream_server_state', { upstream: 'gone', server: `127.0.0.1:${dead}`, backup: 'false', state: 'up' }), 1],
    ['app keeps one idle connection', value(m, 'proxyctl_upstream_connections', { upstream: 'app', server: app.address, state: 'idle' }), 1],
    ['the 413 is a clientMaxBodySize rejection', value(m, 'proxyctl_limit_rejections_total', { limit: 'clientMaxBodySize' }), 1],
    ['the config generation is 1', value(m, 'proxyctl_config_generation'), 1],
    ['no tunnel is open any more', value(m, 'proxyctl_websocket_tunnels', { server: 'site.test', location: '= /ws' }), 0]
  ]
  for (const [name, got, want] of cases) t.equal(got, want, name)
  const listen = p.listeners[0]?.listen.key as string
  t.ok(value(m, 'proxyctl_client_sent_bytes_total', { listen }) > 500, 'bytes sent to clients are counted')
  t.ok(value(m, 'proxyctl_client_received_bytes_total', { listen }) > 200, 'bytes received from clients are counted')
  const here = await request(target, { path: '/here-metrics' })
  t.equal(here.status, 200, 'a location may serve the metrics with metrics()')
  t.match(here.body, /proxyctl_requests_total\{server="site.test",location="\/api\/",status="2xx"\} 2/)
  const status = JSON.parse((await scrape(p.metrics?.url as string, '/status.json')).body)
  t.same(status.upstreams.map((u: { name: string }) => u.name).sort(), [ws.address, 'app', 'gone'].sort(), '/status.json lists the upstreams (a direct target is an upstream of its own address)')
  t.match((await scrape(p.metrics?.url as string, '/')).body, /<title>proxyctl status<\/title>/, 'the status page is served at /')
  t.equal((await request(target, { path: '/metrics' })).status, 404, 'the proxied server does not answer /metrics by itself')
})
