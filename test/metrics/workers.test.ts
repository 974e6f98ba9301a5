// `workers: 2`: the primary serves the metrics listener, answering with both workers' figures added.
import http from 'node:http'
import t from 'tap'
import { configDir, startCli, targetOf, writeConfig } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/lifecycle.js'
import { parseScrape, total, value } from './fixtures/scrape.js'
import { freePort } from '../helpers/failure.js'

function get (port: number, p: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p, agent: new http.Agent({ keepAlive: false }) }, (res) => {
      let b = ''
      res.on('data', (d) => { b += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }))
    }).on('error', reject)
  })
}

t.test('workers: 2, one scrape of the primary adds every worker\'s figures', async (t) => {
  const app = await startUpstream(t, 'app', {}, (_req, res) => { res.end(String(process.pid)) })
  const metricsPort = await freePort()
  const dir = configDir(t)
  const file = writeConfig(dir, `import { defineConfig, respond } from 'proxyctl'
import { proxy } from '@proxyctl/plugins'
export default defineConfig({ workers: 2, metrics: { listen: ${metricsPort} }, upstreams: { app: { servers: ['${app.address}'] } },
  servers: [{ listen: '127.0.0.1:0', serverName: 'w.test', locations: { '/api/': proxy('http://app'), '/pid': respond(200, '$pid') } }] })
`)
  const run = await startCli(t, ['--config', file], { expectListeners: 1 })
  const port = targetOf(run.urls[0] as string).port as number
  await waitFor(() => /metrics and status page on/.test(run.output()), 5000)
  // Fresh connections until both workers have answered, then a known number of proxied requests.
  const pids = new Map<string, number>()
  // The second worker may still be loading the config on a busy machine: up to 20 s for it.
  const until = Date.now() + 20_000
  while (pids.size < 2 && Date.now() < until) { const r = await get(port, '/pid'); pids.set(r.body, (pids.get(r.body) ?? 0) + 1) }
  t.equal(pids.size, 2, 'both workers answered')
  const sentPid = [...pids.values()].reduce((a, b) => a + b, 0)
  for (let i = 0; i < 20; i++) t.equal((await get(port, '/api/x')).status, 200)
  for (let i = 0; i < 3; i++) t.equal((await get(port, '/none')).status, 404)

  const scrape = await get(metricsPort, '/metrics')
  t.equal(scrape.status, 200)
  const m = parseScrape(scrape.body)
  const cases: Array<[string, number, number]> = [
    ['respond() answers of both workers, added', value(m, 'proxyctl_requests_total', { server: 'w.test', location: '/pid', status: '2xx' }), sentPid],
    ['proxied 200s of both workers, added', value(m, 'proxyctl_requests_total', { server: 'w.test', location: '/api/', status: '2xx' }), 20],
    ['404s of both workers, added', value(m, 'proxyctl_requests_total', { server: 'w.test', location: '', status: '4xx' }), 3],
    ['tries at app, added', value(m, 'proxyctl_upstream_tries_total', { upstream: 'app', server: app.address, status: '2xx' }), 20],
    ['durations, added', total(m, 'proxyctl_request_duration_seconds_count', { server: 'w.test' }), sentPid + 23],
    ['app is up (the largest of the workers\' 1 and 1)', value(m, 'proxyctl_upstream_server_state', { upstream: 'app', server: app.address, backup: 'false', state: 'up' }), 1],
    ['config generation: the largest, not a sum', value(m, 'proxyctl_config_generation'), 1]
  ]
  for (const [name, got, want] of cases) t.equal(got, want, name)
  t.equal(await run.stop('SIGTERM'), 0, 'the primary stops, its metrics listener too')
})
