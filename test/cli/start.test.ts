// `proxyctl start` as a user runs it: a TypeScript config, IPv4, IPv6 and unix listeners,
// one log line per address, graceful stop on SIGTERM/SIGINT; `proxyctl init`.
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { cacheHome, configDir, request, runCli, startCli, targetOf, writeConfig } from '../helpers/proxy.js'
import { rawExchange } from '../helpers/raw-http.js'

t.test('start listens on IPv4, IPv6 and a unix socket, one log line each', async (t) => {
  const dir = configDir(t)
  const sock = path.join(dir, 'proxy.sock')
  const file = writeConfig(dir, `import { defineConfig, respond } from 'proxyctl'
const greeting: string = 'hello $remote_addr via $server_name'
export default defineConfig({
  servers: [{
    listen: ['127.0.0.1:0', '[::1]:0', 'unix:${sock}'],
    serverName: 'proxy.test',
    locations: { '/': respond(200, greeting) }
  }]
})
`)
  const run = await startCli(t, ['--config', file], { expectListeners: 3 })
  t.equal(run.urls.length, 3, 'three "listening on" lines')
  t.match(run.urls[0], /^http:\/\/127\.0\.0\.1:\d+$/)
  t.match(run.urls[1], /^http:\/\/\[::1\]:\d+$/)
  t.equal(run.urls[2], `unix:${sock}`)

  const v4 = await request(targetOf(run.urls[0] as string), { path: '/' })
  t.equal(v4.body, 'hello 127.0.0.1 via proxy.test')
  const v6 = await request(targetOf(run.urls[1] as string), { path: '/' })
  t.equal(v6.body, 'hello ::1 via proxy.test')
  const unix = await request({ socketPath: sock }, { path: '/', headers: { host: 'proxy.test' } })
  t.equal(unix.body, 'hello unix: via proxy.test', 'a unix socket peer has $remote_addr "unix:" as in nginx')

  t.equal(await run.stop('SIGTERM'), 0, 'SIGTERM exits 0')
  t.notOk(fs.existsSync(sock), 'the socket file is removed on stop')
})

t.test('SIGTERM lets an in-flight request finish, refuses new connections, exits 0', async (t) => {
  const dir = configDir(t)
  // A handler that answers after 700 ms, to be in flight when the signal arrives.
  const file = writeConfig(dir, `import { defineConfig, defineHandler } from 'proxyctl'
const slow = defineHandler('slow', () => ({
  handle: async (_req, reply) => { await new Promise((r) => setTimeout(r, 700)); return reply.send('finished') }
}))
export default defineConfig({ shutdownTimeout: 5000, servers: [{ listen: '127.0.0.1:0', locations: { '/': slow } }] })
`)
  const run = await startCli(t, ['--config', file])
  const target = targetOf(run.urls[0] as string)
  const inflight = request(target, { path: '/slow' })
  await new Promise((r) => setTimeout(r, 200))
  const started = Date.now()
  const exit = run.stop('SIGTERM')
  const res = await inflight
  t.equal(res.status, 200, 'the in-flight request completes')
  t.equal(res.body, 'finished')
  await new Promise((r) => setTimeout(r, 50))
  await t.rejects(request(target, { path: '/' }), 'new connections are refused while draining')
  t.equal(await exit, 0, 'exit code 0')
  t.ok(Date.now() - started < 3000, 'exits once drained, well before the grace period')
})

t.test('SIGINT past the grace period cuts the connection and still exits 0', async (t) => {
  const dir = configDir(t)
  const file = writeConfig(dir, `import { defineConfig, defineHandler } from 'proxyctl'
const never = defineHandler('never', () => ({ handle: () => new Promise(() => {}) }))
export default defineConfig({ shutdownTimeout: 300, servers: [{ listen: '127.0.0.1:0', locations: { '/': never } }] })
`)
  const run = await startCli(t, ['--config', file])
  const target = targetOf(run.urls[0] as string)
  const pending = rawExchange(target, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 5000)
  await new Promise((r) => setTimeout(r, 200))
  const started = Date.now()
  t.equal(await run.stop('SIGINT'), 0)
  t.equal(await pending, '', 'the stuck request got no answer and its connection was closed')
  t.ok(Date.now() - started < 2500, 'grace period bounded the stop')
})

t.test('init writes a starter config that check accepts; refuses to overwrite', async (t) => {
  // The starter's selfSignedCertificate() keeps its certificate in a folder of this test's.
  cacheHome(t)
  const dir = configDir(t)
  const first = await runCli(['init'], { cwd: dir })
  t.equal(first.code, 0)
  t.ok(fs.existsSync(path.join(dir, 'proxy.config.ts')))
  const check = await runCli(['check'], { cwd: dir })
  t.equal(check.code, 0, check.stderr)
  t.match(check.stdout, /location = \/health/)
  const again = await runCli(['init'], { cwd: dir })
  t.equal(again.code, 1)
  t.match(again.stderr, /already exists/)
})

t.test('start with no config in the folder explains what to do', async (t) => {
  const dir = configDir(t)
  const run = await runCli(['start'], { cwd: dir })
  t.equal(run.code, 1)
  t.match(run.stderr, /no config found .* run `proxyctl init`/)
})

t.test('a proxy whose log reader went away still serves and stops on SIGTERM', async (t) => {
  const dir = configDir(t)
  const file = writeConfig(dir, `import { defineConfig, respond } from 'proxyctl'
export default defineConfig({ servers: [{ listen: '127.0.0.1:0', locations: { '/': respond(200, 'alive') } }] })
`)
  const run = await startCli(t, ['--config', file])
  const target = targetOf(run.urls[0] as string)
  // The reader of stdout goes away (a dead test runner, a closed terminal).
  run.child.stdout?.destroy()
  await new Promise((r) => setTimeout(r, 100))
  t.equal((await request(target, { path: '/' })).body, 'alive', 'still serving')
  const started = Date.now()
  t.equal(await run.stop('SIGTERM'), 0, 'SIGTERM exits 0')
  t.ok(Date.now() - started < 3000, 'promptly')
})
