// Limit zones shared through a real Redis (Debian's redis-server on a unix socket, killed by pid):
// two proxyctl processes charge one bucket; Redis killed mid-test: serving goes on, counting
// locally, with one warn line for the outage.
import { spawn, spawnSync } from 'node:child_process'
import path from 'node:path'
import t from 'tap'
import { exchange } from '../helpers/raw-http.js'
import { waitFor } from '../helpers/lifecycle.js'
import { configDir, startCli, targetOf, writeConfig } from '../helpers/proxy.js'

const hasRedis = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0

t.test('two proxyctl processes share one Redis bucket; Redis killed: local counting, one warn line', { skip: hasRedis ? false : 'redis-server is not installed (apt-get install redis-server)' }, async (t) => {
  const dir = configDir(t)
  const sock = path.join(dir, 'redis.sock')
  const redis = spawn('redis-server', ['--port', '0', '--unixsocket', sock, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  t.teardown(() => { if (redis.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL') })
  t.ok(await waitFor(() => { try { return spawnSync('redis-cli', ['-s', sock, 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG' } catch { return false } }, 5000), 'redis-server answers')
  const config = writeConfig(dir, `import { defineConfig, respond } from 'proxyctl'
export default defineConfig({
  limitReqZones: { shared: { key: '$binary_remote_addr', rate: '1r/s', store: { redis: 'unix:${sock}' } } },
  servers: [{ listen: '127.0.0.1:0', locations: { '/': { limitReq: { zone: 'shared', burst: 2, nodelay: true }, handler: respond(200, 'ok\\n') } } }]
})
`)
  const a = await startCli(t, ['-c', config, '--log-format', 'json'])
  const b = await startCli(t, ['-c', config, '--log-format', 'json'])
  const statusVia = async (url: string): Promise<number> => (await exchange(targetOf(url), '/x', { headers: [['Connection', 'close']] })).status
  const through: number[] = []
  for (const url of [a.urls[0], b.urls[0], a.urls[0], b.urls[0], a.urls[0], b.urls[0]]) through.push(await statusVia(url as string))
  t.same(through, [200, 200, 200, 503, 503, 503], '1r/s burst 2 nodelay counts requests through both processes: three pass, then refused')

  redis.kill('SIGKILL')
  await new Promise((resolve) => setTimeout(resolve, 300))
  const after: number[] = []
  for (let i = 0; i < 5; i++) after.push(await statusVia(a.urls[0] as string))
  t.same(after, [200, 200, 200, 503, 503], 'Redis down: serving goes on, the same limit counted in this process')
  const warns = a.output().split('\n').filter((l) => l.includes('"code":"PROXYCTL_LIMIT_STORE_UNAVAILABLE"'))
  t.equal(warns.length, 1, 'one warn line for the outage, not one per request')
  t.match(warns[0], /"level":40.*limit zones on redis unix:/, 'at warn, naming the store')
  t.match(a.output(), /"code":"PROXYCTL_LIMIT_REQ_REJECTED"/, 'refusals still logged')
})

t.test('the timing table with every zone on Redis: the Lua buckets and counts decide as nginx', { skip: hasRedis ? false : 'redis-server is not installed (apt-get install redis-server)' }, async (t) => {
  const { resolveConfig, startProxy } = await import('@proxyctl/core')
  const { limitCases, playLimitCase, proxyctlLimitConfig, startLimitsUpstream, warmUp } = await import('./fixtures/limit-cases.js')
  const dir = configDir(t)
  const sock = path.join(dir, 'redis.sock')
  const redis = spawn('redis-server', ['--port', '0', '--unixsocket', sock, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  t.teardown(() => { if (redis.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL') })
  await waitFor(() => spawnSync('redis-cli', ['-s', sock, 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG', 5000)
  const up = await startLimitsUpstream(t, path.join(dir, 'app.sock'))
  const proxy = await startProxy(resolveConfig(proxyctlLimitConfig(0, path.join(dir, 'app.sock'), { redis: `unix:${sock}` })), { logger: false, announce: false })
  t.teardown(() => proxy.close(0))
  const port = proxy.listeners[0]?.port as number
  await warmUp(port)
  for (const c of limitCases) t.same((await playLimitCase(port, c, up)).waves, c.expected, c.name)
  const counts = spawnSync('redis-cli', ['-s', sock, '--scan', '--pattern', 'proxyctl:lc:*'], { encoding: 'utf8' }).stdout.trim()
  t.equal(counts, '', 'every limitConn count released once its request was over')
})
