/**
 * Upgrade requests pipelined behind others on one connection are answered in order, as nginx
 * answers them (the table, fixtures/pipelined-upgrade-cases.ts, was checked against nginx 1.22.1
 * with fixtures/nginx-compare.ts). Each case runs against `proxyctl start` with workers: 1 and
 * workers: 2: the process (every worker) stays alive and a fresh request is served afterwards.
 * Before this, a GET then an Upgrade in one write ended the process (ERR_HTTP_SOCKET_ASSIGNED).
 */
import path from 'node:path'
import t from 'tap'
import { configDir, startCli, targetOf, writeConfig, type StartedCli } from '../helpers/proxy.js'
import type { Teardown } from '../helpers/lifecycle.js'
import { converse, converseWhole, get, pipelineCases, startPipelineUpstream, type PipelineUpstream } from './fixtures/pipelined-upgrade-cases.js'

/** What a process exit would leave in proxyctl's output: a worker replaced, or a crash trace. */
const CRASH = /exited \(|starting a new one|uncaught|ERR_HTTP_SOCKET_ASSIGNED/i

async function startProxyctl (t: Teardown, workers: number): Promise<{ run: StartedCli, port: number, up: PipelineUpstream }> {
  const dir = configDir(t)
  const app = path.join(dir, 'app.sock')
  const up = await startPipelineUpstream(t, app)
  const file = writeConfig(dir, `import { defineConfig, proxy, websocket } from 'proxyctl'
export default defineConfig({
  upstreams: { app: { servers: ['unix:${app}'] } },
  workers: ${workers},
  servers: [{
    listen: '127.0.0.1:0',
    locations: {
      '/': proxy('http://app'),
      '/ws': websocket('http://app')
    }
  }]
})
`)
  const run = await startCli(t, ['--config', file])
  return { run, port: targetOf(run.urls[0] as string).port as number, up }
}

for (const workers of [1, 2]) {
  t.test(`workers: ${workers}`, async (t) => {
    const { run, port, up } = await startProxyctl(t, workers)
    for (const c of pipelineCases) {
      t.same(await converseWhole(port, c.parts, up), c.expected, c.name)
    }
    t.equal(run.child.exitCode, null, 'the process is alive')
    t.notMatch(run.output(), CRASH, 'no process or worker exited')
    t.same(await converse(port, [get('/fresh')]), ['200 plain GET /fresh host=app upgrade=-', '  head: connection: keep-alive, content-length: 35, date: *', 'open'], 'a fresh request afterwards is served')
  })
}
