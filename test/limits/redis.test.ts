// Limit zones shared through a real Redis (Debian's redis-server on a unix socket or a free TCP
// port, killed by PID): two proxyctl processes charge one limitReq bucket, and share one limitConn
// count; Redis killed mid-test: serving goes on, counting in each process, with one warn line for
// the outage; the timing table with every zone on Redis.
import type { ServerResponse } from 'node:http'
import path from 'node:path'
import t from 'tap'
import { freePort } from '../helpers/failure.js'
import { waitFor } from '../helpers/lifecycle.js'
import { configDir, request, startCli, targetOf, writeConfig } from '../helpers/proxy.js'
import { exchange } from '../helpers/raw-http.js'
import { redisMissing, startRedis } from '../helpers/redis.js'
import { startUpstream } from '../helpers/upstream.js'

t.test('two proxyctl processes share one Redis bucket; Redis killed: local counting, one warn line', { skip: redisMissing() }, async (t) => {
  const dir = configDir(t)
  const sock = path.join(dir, 'redis.sock')
  const redis = await startRedis(t, { socket: sock })
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

  redis.kill()
  await new Promise((resolve) => setTimeout(resolve, 300))
  const after: number[] = []
  for (let i = 0; i < 5; i++) after.push(await statusVia(a.urls[0] as string))
  t.same(after, [200, 200, 200, 503, 503], 'Redis down: serving goes on, the same limit counted in this process')
  const warns = a.output().split('\n').filter((l) => l.includes('"code":"PROXYCTL_LIMIT_STORE_UNAVAILABLE"'))
  t.equal(warns.length, 1, 'one warn line for the outage, not one per request')
  t.match(warns[0], /"level":40.*limit zones on redis unix:/, 'at warn, naming the store')
  t.match(a.output(), /"code":"PROXYCTL_LIMIT_REQ_REJECTED"/, 'refusals still logged')
})

t.test('the timing table with every zone on Redis: the Lua buckets and counts decide as nginx', { skip: redisMissing() }, async (t) => {
  const { resolveConfig, startProxy } = await import('@proxyctl/core')
  const { limitCases, playLimitCase, proxyctlLimitConfig, startLimitsUpstream, warmUp } = await import('./fixtures/limit-cases.js')
  const dir = configDir(t)
  const sock = path.join(dir, 'redis.sock')
  const redis = await startRedis(t, { socket: sock })
  const up = await startLimitsUpstream(t, path.join(dir, 'app.sock'))
  const proxy = await startProxy(resolveConfig(proxyctlLimitConfig(0, path.join(dir, 'app.sock'), { redis: redis.url })), { logger: false, announce: false })
  t.teardown(() => proxy.close(0))
  const port = proxy.listeners[0]?.port as number
  await warmUp(port)
  for (const c of limitCases) t.same((await playLimitCase(port, c, up)).waves, c.expected, c.name)
  const counts = redis.cli('--scan', '--pattern', 'proxyctl:lc:*')
  t.equal(counts, '', 'every limitConn count released once its request was over')
})

t.test('limitConn through one Redis on a TCP port: two proxyctl processes share the count; Redis killed: each counts in its process', { skip: redisMissing() }, async (t) => {
  const dir = configDir(t)
  const port = await freePort()
  const redis = await startRedis(t, { port })
  const cli = redis.cli
  // The app holds /hold/ requests until the test lets them go: each is a request in flight.
  const held: ServerResponse[] = []
  const app = await startUpstream(t, 'app', {}, (req, res) => {
    if (req.url?.startsWith('/hold/') === true) { held.push(res); return }
    res.writeHead(200, { 'content-length': '3' }).end('ok\n')
  })
  const release = (n: number): void => { for (const res of held.splice(0, n)) res.writeHead(200, { 'content-length': '3' }).end('ok\n') }
  const config = writeConfig(dir, `import { defineConfig, proxy } from 'proxyctl'
export default defineConfig({
  limitConnZones: { shared: { key: '$binary_remote_addr', store: { redis: '${redis.url}' } } },
  servers: [{ listen: '127.0.0.1:0', locations: { '/': { limitConn: { zone: 'shared', max: 2 }, handler: proxy('http://${app.address}') } } }]
})
`)
  const a = await startCli(t, ['-c', config, '--log-format', 'json'])
  const b = await startCli(t, ['-c', config, '--log-format', 'json'])
  const [viaA, viaB] = [targetOf(a.urls[0] as string), targetOf(b.urls[0] as string)]
  // Counted in Redis itself: the key ends with the 4 bytes of $binary_remote_addr (a NUL among them), which no argv can carry.
  const leases = (): number => Number(cli('eval', "local n = 0 for _, k in ipairs(redis.call('keys', ARGV[1])) do n = n + redis.call('zcard', k) end return n", '0', 'proxyctl:lc:shared:*'))

  const one = request(viaA, { path: '/hold/1' })
  const two = request(viaB, { path: '/hold/2' })
  await waitFor(() => held.length === 2, 5000, 'two requests in flight at the app, one through each process')
  const refused = [(await request(viaA, { path: '/hold/3' })).status, (await request(viaB, { path: '/hold/4' })).status]
  const rows: Array<[string, unknown, unknown]> = [
    ['Redis holds one lease per request in flight, from both processes', leases(), 2],
    ['max 2 across both processes: a third request through either is 503', refused, [503, 503]],
    ['nothing more reached the app', app.seen.length + held.length, 2]
  ]
  release(1)
  const freed = await Promise.race([one, two])
  await waitFor(() => leases() === 1, 3000)
  const three = request(viaB, { path: '/hold/5' })
  await waitFor(() => held.length === 2, 5000, 'the freed slot taken through the other process')
  rows.push(
    ['a finished request answers 200', freed.status, 200],
    ['its lease is gone from Redis, and a request through the other process takes the slot', leases(), 2]
  )
  release(2)
  const answered = await Promise.all([one, two, three])
  await waitFor(() => leases() === 0, 3000)
  rows.push(
    ['every held request answered 200', answered.map((r) => r.status), [200, 200, 200]],
    ['no lease left in Redis once every request is over', leases(), 0]
  )

  // Redis goes away with a request in flight through a: its lease cannot be given back, and
  // serving goes on with each process counting its own requests (max 2 in each).
  const before = request(viaA, { path: '/hold/6' })
  await waitFor(() => held.length === 1, 5000, 'a request in flight through a')
  redis.kill()
  await new Promise((resolve) => setTimeout(resolve, 300))
  const local = [request(viaA, { path: '/hold/7' }), request(viaA, { path: '/hold/8' })]
  await waitFor(() => held.length === 3, 5000, 'two more in flight through a, counted in a')
  const overA = (await request(viaA, { path: '/hold/9' })).status
  const viaBDown = (await request(viaB, { path: '/plain' })).status
  release(3)
  const afterKill = await Promise.all([before, ...local])
  const warns = a.output().split('\n').filter((l) => l.includes('"code":"PROXYCTL_LIMIT_STORE_UNAVAILABLE"'))
  rows.push(
    ['Redis down: a counts its own requests, the third of its own in flight is 503', overA, 503],
    ['b serves on', viaBDown, 200],
    ['the request in flight when Redis died and the two counted locally answer 200', afterKill.map((r) => r.status), [200, 200, 200]],
    ['a logs one warn line for the outage', warns.length, 1],
    ['a logged the refusal', /"code":"PROXYCTL_LIMIT_CONN_REJECTED"/.test(a.output()), true],
    ['neither process crashed', [a.child.exitCode, b.child.exitCode], [null, null]]
  )
  for (const [name, got, want] of rows) t.same(got, want, name)
})
