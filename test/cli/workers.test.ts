// `workers: N`: N processes serve the same listeners; a crashed worker is replaced with a log
// line; SIGTERM drains every worker and the primary exits 0.
import http from 'node:http'
import path from 'node:path'
import t from 'tap'
import { configDir, startCli, targetOf, writeConfig } from '../helpers/proxy.js'
import { waitFor } from '../helpers/lifecycle.js'

function get (port: number, agent: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let b = ''
      res.on('data', (d) => { b += d })
      res.on('end', () => resolve(b))
    }).on('error', reject)
  })
}

async function pidsAnswering (port: number, n: number): Promise<Set<string>> {
  const pids = new Set<string>()
  // A fresh connection per request, so the kernel's accept distribution can reach every worker.
  for (let i = 0; i < n; i++) pids.add(await get(port, new http.Agent({ keepAlive: false })))
  return pids
}

t.test('workers: 2 serve one listener from two processes, restart a dead one, drain on SIGTERM', async (t) => {
  const dir = configDir(t)
  const sock = path.join(dir, 'w.sock')
  const file = writeConfig(dir, `import { defineConfig, respond } from 'proxyctl'
export default defineConfig({ workers: 2, servers: [{ listen: ['127.0.0.1:0', 'unix:${sock}'], locations: { '/': respond(200, '$pid') } }] })
`)
  const run = await startCli(t, ['--config', file], { expectListeners: 2 })
  t.equal(run.urls.length, 2, 'one "listening on" line per address, from the primary')
  const port = targetOf(run.urls.find((u) => u.startsWith('http')) as string).port as number

  let pids = new Set<string>()
  for (let round = 0; round < 10 && pids.size < 2; round++) for (const p of await pidsAnswering(port, 20)) pids.add(p)
  t.equal(pids.size, 2, 'two worker processes answer')
  t.notOk(pids.has(String(run.child.pid)), 'the primary itself serves nothing')

  const victim = Number([...pids][0])
  process.kill(victim, 'SIGKILL')
  const crashLine = new RegExp(`worker ${victim} exited \\(SIGKILL\\); starting a new one`)
  await waitFor(() => crashLine.test(run.output()), 5000)
  t.match(run.output(), crashLine, 'the crash is logged')

  // The new worker needs a moment to load the config and take its share.
  let after = new Set<string>()
  const until = Date.now() + 10_000
  while (after.size < 2 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100))
    after = await pidsAnswering(port, 10).catch(() => new Set<string>())
  }
  t.equal(after.size, 2, 'two workers again')
  t.notOk(after.has(String(victim)), 'the dead worker was replaced')

  const code = await run.stop('SIGTERM')
  t.equal(code, 0, 'the primary exits 0 after draining the workers')
  t.match(run.output(), /SIGTERM: stopping 2 workers/)
})
