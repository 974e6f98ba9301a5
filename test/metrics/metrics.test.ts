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
import { parseScrape, total, value } from './fixtures/scrape.js'
import { freePort } from '../helpers/failure.js'
import { testCa } from '../helpers/tls.js'
import { h2Request, type H2Case } from '../http2/fixtures/h2-cases.js'
import { send } from '../helpers/raw-http.js'
import type http from 'node:http'

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
    ['request durations: one per answer but the tunnel', total(m, 'proxyctl_request_duration_seconds_count', { server: 'site.test' }), 6],
    ['durations by location: /api/\'s two 200s and its 413', value(m, 'proxyctl_request_duration_seconds_count', { server: 'site.test', location: '/api/' }), 3],
    ['the 404 no location answered has its duration in location ""', value(m, 'proxyctl_request_duration_seconds_count', { server: 'site.test', location: '' }), 1],
    ['upstream tries at app: two 2xx', value(m, 'proxyctl_upstream_tries_total', { upstream: 'app', server: app.address, status: '2xx' }), 2],
    ['upstream response times at app: two', value(m, 'proxyctl_upstream_response_time_seconds_count', { upstream: 'app', server: app.address }), 2],
    ['the failed try at gone is a 5xx try', value(m, 'proxyctl_upstream_tries_total', { upstream: 'gone', server: `127.0.0.1:${dead}`, status: '5xx' }), 1],
    ['app is up', value(m, 'proxyctl_upstream_server_state', { upstream: 'app', server: app.address, backup: 'false', state: 'up' }), 1],
    ['gone is up: a single server is never marked failed, as nginx', value(m, 'proxyctl_upstream_server_state', { upstream: 'gone', server: `127.0.0.1:${dead}`, backup: 'false', state: 'up' }), 1],
    ['app keeps one idle connection', value(m, 'proxyctl_upstream_connections', { upstream: 'app', server: app.address, state: 'idle' }), 1],
    ['the 413 is a clientMaxBodySize rejection', value(m, 'proxyctl_limit_rejections_total', { limit: 'clientMaxBodySize', zone: '' }), 1],
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

t.test('limitReq and limitConn refusals by zone, HTTP/2 requests as HTTP/1.1 ones, open tunnels', async (t) => {
  const dir = tmpDir(t)
  // /hold/ answers when the test lets it: a request there holds its limitConn slot.
  const held: http.ServerResponse[] = []
  const app = await startUpstream(t, 'app', {}, (req, res) => {
    if (req.url?.startsWith('/hold/') === true) { held.push(res); return }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' }).end('ok\n')
  })
  const ws = await startWsUpstream(t, {})
  const ca = testCa(path.join(dir, 'ca'))
  const cert = ca.leaf('localhost', ['localhost', '127.0.0.1'])
  const [h1, tlsPort, h2c] = [await freePort(), await freePort(), await freePort()]
  const p = await startConfig(t, {
    metrics: { listen: 0 },
    limitReqZones: { slow: { key: '$binary_remote_addr', rate: '1r/m' }, dry: { key: '$binary_remote_addr', rate: '1r/m' } },
    limitConnZones: { one: { key: '$binary_remote_addr' } },
    upstreams: { app: { servers: [app.address] } },
    servers: [{
      serverName: 'site.test',
      listen: [`127.0.0.1:${h1}`, { address: `127.0.0.1:${tlsPort}`, https: { cert: cert.cert, key: cert.key }, http2: true }, { address: `127.0.0.1:${h2c}`, http2: true }],
      locations: {
        '/api/': proxy('http://app'),
        '/rated/': { limitReq: { zone: 'slow' }, handler: proxy('http://app') },
        '/dry/': { limitReq: { zone: 'dry' }, limitReqDryRun: true, handler: proxy('http://app') },
        '/hold/': { limitConn: { zone: 'one', max: 1 }, handler: proxy('http://app') },
        '/body/': { clientMaxBodySize: 10, clientBodyTimeout: 300, handler: proxy('http://app') },
        '= /ws': websocket(ws.target)
      }
    }]
  } as never)
  const target = { host: '127.0.0.1', port: h1 }
  const statuses = async (paths: string[]): Promise<number[]> => { const out: number[] = []; for (const path of paths) out.push((await request(target, { path })).status); return out }
  t.same(await statuses(['/rated/1', '/rated/2', '/rated/3', '/rated/4']), [200, 503, 503, 503], 'limitReq 1r/m: the first passes, three are refused')
  t.same(await statuses(['/dry/1', '/dry/2', '/dry/3']), [200, 200, 200], 'a dry run refuses nothing')
  const holding = request(target, { path: '/hold/a' })
  await waitFor(() => held.length === 1, 5000, 'the first /hold/ request at the upstream')
  t.same(await statuses(['/hold/b', '/hold/c']), [503, 503], 'limitConn max 1: two more while one is in flight are refused')
  for (const res of held) res.writeHead(200, { 'content-length': '3' }).end('ok\n')
  t.equal((await holding).status, 200)

  // Body limits the proxy finds while reading: a chunked body over clientMaxBodySize (413), a body that stops coming (clientBodyTimeout: closed, logged 408).
  const chunked = await send(target, 'POST /body/big HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n' + 'x'.repeat(64) + '\r\n0\r\n\r\n', { ms: 5000 })
  t.match(chunked.raw, /^HTTP\/1\.1 413 /, 'a chunked body over clientMaxBodySize is 413')
  const stalled = await send(target, 'POST /body/slow HTTP/1.1\r\nHost: site.test\r\nContent-Length: 8\r\n\r\nabc', { ms: 5000 })
  t.same([stalled.raw, stalled.closed], ['', true], 'a body that stops coming: the connection is closed without an answer')
  const h2 = (port: number, tls: boolean, path: string): Promise<{ status: number }> => h2Request(port, { name: path, path } as H2Case, tls, ca.cert)
  const over = { h1: 3, h2: 4, h2c: 5 }
  for (let i = 0; i < over.h1; i++) t.equal((await request(target, { path: `/api/h1-${i}` })).status, 200)
  for (let i = 0; i < over.h2; i++) t.equal((await h2(tlsPort, true, `/api/h2-${i}`)).status, 200)
  for (let i = 0; i < over.h2c; i++) t.equal((await h2(h2c, false, `/api/h2c-${i}`)).status, 200)
  t.equal((await h2(h2c, false, '/nothing')).status, 404, 'a 404 over h2c')

  const socks = [await openWs(t, `ws://127.0.0.1:${h1}/ws`), await openWs(t, `ws://127.0.0.1:${h1}/ws`)]
  const open = parseScrape((await scrape(p.metrics?.url as string)).body)
  socks[0]?.close()
  await waitFor(() => ws.clients.size === 1, 3000, 'one tunnel closed at the upstream')
  await new Promise((r) => setTimeout(r, 100))

  const m = parseScrape((await scrape(p.metrics?.url as string)).body)
  const reject = (limit: string, zone: string): number => value(m, 'proxyctl_limit_rejections_total', { limit, zone })
  const req = (location: string, status: string): number => value(m, 'proxyctl_requests_total', { server: 'site.test', location, status })
  const listenKey = (port: number): string => p.listeners.find((l) => l.port === port)?.listen.key as string
  const cases: Array<[string, number, number]> = [
    ['limitReq refusals count by zone', reject('limitReq', 'slow'), 3],
    ['a dry run\'s refusals are not rejections', reject('limitReq', 'dry'), 0],
    ['a chunked body over clientMaxBodySize is a clientMaxBodySize rejection', reject('clientMaxBodySize', ''), 1],
    ['a body that timed out is a clientBodyTimeout rejection', reject('clientBodyTimeout', ''), 1],
    ['both count as 4xx answers of /body/ (the 408 as logged)', req('/body/', '4xx'), 2],
    ['limitConn refusals count by zone', reject('limitConn', 'one'), 2],
    ['the refused requests count as 5xx answers of their location', req('/rated/', '5xx'), 3],
    ['and the passed one as 2xx', req('/rated/', '2xx'), 1],
    ['limitConn: two 5xx and one 2xx at /hold/', req('/hold/', '5xx') * 10 + req('/hold/', '2xx'), 21],
    ['HTTP/1.1, h2 and h2c requests all count in their location', req('/api/', '2xx'), over.h1 + over.h2 + over.h2c],
    ['a 404 over h2c counts in the server', req('', '4xx'), 1],
    ['every answer has a duration (4 rated, 3 dry, 3 hold, 2 body, 12 api, one 404)', total(m, 'proxyctl_request_duration_seconds_count', { server: 'site.test' }), 4 + 3 + 3 + 2 + 12 + 1],
    ['upstream tries: every request that reached app', value(m, 'proxyctl_upstream_tries_total', { upstream: 'app', server: app.address, status: '2xx' }), 1 + 3 + 1 + 12],
    ['two tunnels were open at the first scrape', value(open, 'proxyctl_websocket_tunnels', { server: 'site.test', location: '= /ws' }), 2],
    ['one is open after the other closed', value(m, 'proxyctl_websocket_tunnels', { server: 'site.test', location: '= /ws' }), 1],
    ['the closed tunnel counted its 101', req('= /ws', '1xx'), 1]
  ]
  for (const [name, got, want] of cases) t.equal(got, want, name)
  // Each HTTP/2 request here had a connection of its own (closed since), which opened with the
  // 24-byte preface and got at least a SETTINGS frame, the HEADERS and the body back.
  for (const [name, port, connections] of [['TLS h2', tlsPort, over.h2], ['h2c', h2c, over.h2c + 1]] as const) {
    t.ok(value(m, 'proxyctl_client_received_bytes_total', { listen: listenKey(port) }) >= 24 * connections, `bytes received over ${name} (closed connections) are counted`)
    t.ok(value(m, 'proxyctl_client_sent_bytes_total', { listen: listenKey(port) }) >= 30 * connections, `bytes sent over ${name} (closed connections) are counted`)
  }
  const status = JSON.parse((await scrape(p.metrics?.url as string, '/status.json')).body)
  t.same(status.limitRejections, { 'limitReq slow': 3, 'limitReq dry': 0, 'limitConn one': 2, clientMaxBodySize: 1, clientBodyTimeout: 1 }, '/status.json names each zone\'s rejections, and the front door\'s by limit')
})
