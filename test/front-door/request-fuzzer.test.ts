/**
 * Mutated requests (fixtures/request-fuzzer.ts: request lines, headers, bodies, pipelines,
 * WebSocket handshakes) against `proxyctl start`, over TCP and a unix socket, for a bounded time:
 * no process exit, every connection ends (answered or closed) within the quiet time or the
 * proxy's own timeouts, nothing reaches the app that a front door should stop (a TRACE, two
 * Hosts, framing the app's parser refuses...), memory stays bounded, and a fresh request is
 * served afterwards. A failing run prints its seed; `FUZZ_SEED=N` replays it, `FUZZ_MS` changes
 * the budget (`pnpm fuzz`: five minutes).
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { configDir, startCli, targetOf, writeConfig } from '../helpers/proxy.js'
import { converse, get, startPipelineUpstream } from './fixtures/pipelined-upgrade-cases.js'
import { fuzzInput, prng, sendFuzz } from './fixtures/request-fuzzer.js'

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
const BUDGET_MS = Number(process.env.FUZZ_MS ?? 20_000)
/** Connections in flight at once. */
const PARALLEL = 16
/** What a process exit would leave in proxyctl's output: a worker replaced, or a crash trace. */
const CRASH = /exited \(|starting a new one|uncaught|Error \[ERR_|\n {4}at /i

function rssKiB (pid: number | undefined): number {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid ?? 0}/status`, 'utf8'))
  return Number(m?.[1] ?? 0)
}

t.test(`request fuzzer, seed ${SEED}, ${BUDGET_MS} ms`, async (t) => {
  const dir = configDir(t)
  const app = path.join(dir, 'app.sock')
  const front = path.join(dir, 'front.sock')
  fs.mkdirSync(path.join(dir, 'files'))
  fs.writeFileSync(path.join(dir, 'files', 'a.txt'), 'a file\n')
  const upstream = await startPipelineUpstream(t, app)
  const file = writeConfig(dir, `import { defineConfig, proxy, respond, serveStatic, websocket } from 'proxyctl'
export default defineConfig({
  upstreams: { app: { servers: ['unix:${app}'] } },
  servers: [{
    listen: ['127.0.0.1:0', 'unix:${front}'],
    locations: {
      '/': proxy('http://app'),
      '/ws': websocket('http://app'),
      '= /r': respond(200, 'ok $request_method $uri'),
      '/files/': { root: '${dir}', handler: serveStatic() }
    }
  }]
})
`)
  const run = await startCli(t, ['--config', file], { expectListeners: 2 })
  const tcp = { port: targetOf(run.urls.find((u) => u.startsWith('http')) as string).port as number }
  const unix = { socketPath: front }

  const rssBefore = rssKiB(run.child.pid)
  const rng = prng(SEED)
  const until = Date.now() + BUDGET_MS
  let sent = 0
  let answered = 0
  const worker = async (): Promise<void> => {
    while (Date.now() < until && run.child.exitCode === null) {
      const parts = fuzzInput(rng)
      const bytes = await sendFuzz(rng() < 0.8 ? tcp : unix, parts)
      sent++
      if (bytes > 0) answered++
    }
  }
  await Promise.all(Array.from({ length: PARALLEL }, worker))
  t.comment(`${sent} mutated requests sent, ${answered} answered with some bytes`)

  const growth = (rssKiB(run.child.pid) - rssBefore) / 1024
  t.equal(run.child.exitCode, null, 'the process is alive')
  t.same(upstream.faults.slice(0, 5), [], `nothing reached the app that the front door should stop (${upstream.requests} requests reached it)`)
  t.ok(growth < 100, `resident memory grew ${growth.toFixed(1)} MiB (bound: 100)`)
  t.notMatch(run.output(), CRASH, 'no process or worker exited, no crash trace')
  t.ok(sent >= 500, `enough inputs ran to mean something (${sent})`)
  t.ok(answered >= sent / 4, `most connections got an answer (${answered} of ${sent})`)
  t.same(await converse(tcp.port, [get('/fresh')]), ['200 plain GET /fresh host=app upgrade=-', '  head: connection: keep-alive, content-length: 35, date: *', 'open'], 'a fresh request afterwards is served')
})
