/**
 * Upstream health with real upstream servers on loopback: active checks (UpstreamPool directly,
 * then through the proxy), passive accounting (maxFails / failTimeout) through the proxy, and
 * the answer when every upstream is down.
 */
import type http from 'node:http'
import t from 'tap'
import { UpstreamPool, type PoolLogger, type UpstreamPeer } from '@proxyctl/plugins/internal'
import type { UpstreamConfig } from 'proxyctl'
import { echo, startUpstream, type Upstream, type UpstreamHandler } from '../helpers/upstream.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { waitFor, type Teardown } from '../helpers/lifecycle.js'
import { countBy } from './helpers/peers.js'
import { appConfig, captureLogger, client, hit, start, type LogLine } from './helpers/through-proxy.js'

/**
 * Upstreams whose `/health` answers what `health[name]` says (a status, or `'hang'`: never);
 * every other path is echoed. `checks[name]` lists the statuses /health answered.
 */
function healthUpstreams () {
  const health: Record<string, number | 'hang'> = {}
  const checks: Record<string, Array<number | 'hang'>> = {}
  const traffic: Record<string, number[]> = {}
  const handler: UpstreamHandler = (req: http.IncomingMessage, res: http.ServerResponse, up: Upstream) => {
    if (req.url === '/health') {
      const s = health[up.name] ?? 200
      ;(checks[up.name] ??= []).push(s)
      if (s === 'hang') return // answered never; the socket is cut when the upstream stops
      res.writeHead(s, { 'content-length': 2 })
      res.end('ok')
      return
    }
    ;(traffic[up.name] ??= []).push(Date.now())
    echo(req, res, up)
  }
  const count = (name: string, status: number | 'hang'): number => (checks[name] ?? []).filter((s) => s === status).length
  const start = (tt: Teardown, name: string): Promise<Upstream> => startUpstream(tt, name, { port: 0 }, handler)
  return { health, checks, traffic, count, start }
}

/** An UpstreamPool started directly, its log captured; closed when the test ends. */
async function startPool (tt: Teardown, config: UpstreamConfig, onLine?: (l: LogLine) => void): Promise<{ pool: UpstreamPool, lines: LogLine[], peer: (u: Upstream) => UpstreamPeer }> {
  const pool = new UpstreamPool('app', config)
  const { logger, lines } = captureLogger(onLine)
  pool.log = logger as unknown as PoolLogger
  tt.teardown(() => pool.close())
  await pool.start()
  const peer = (u: Upstream): UpstreamPeer => {
    const p = pool.peers.find((x) => x.address === u.address)
    if (p === undefined) throw new Error(`no peer ${u.address}`)
    return p
  }
  return { pool, lines, peer }
}

function picks (pool: UpstreamPool, n: number): Record<string, number> {
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(pool.pick({ tried: new Set() }, Date.now()).peer?.address ?? '-')
  return countBy(out)
}

const transitions = (lines: LogLine[], server: string): LogLine[] => lines.filter((l) => l.server === server && (l.level === 'warn' || l.level === 'info'))

t.test('active checks (UpstreamPool): fall failures mark a peer down, rise successes mark it up, each transition logged', async (t) => {
  const h = healthUpstreams()
  const a = await h.start(t, 'a')
  const b = await h.start(t, 'b')
  // What b's /health had answered when each transition line was logged.
  const at: Array<{ msg: string, bad: number, good: number }> = []
  const { pool, lines, peer } = await startPool(t, {
    servers: [a.address, b.address],
    healthCheck: { interval: 40, path: '/health', fall: 3, rise: 2, timeout: 500 }
  }, (l) => { if (l.server === b.address) at.push({ msg: l.msg, bad: h.count('b', 500), good: h.count('b', 200) }) })

  t.equal(peer(a).checkDown, false, 'peers start up')
  t.equal(peer(b).checkDown, false, 'peers start up')
  await waitFor(() => h.count('b', 200) >= 3, 2000, '3 good checks of b')
  t.equal(peer(b).checkDown, false, 'passing checks keep a peer up')

  h.health.b = 500
  await waitFor(() => peer(b).checkDown, 2000, 'b marked down')
  t.equal(at[0]?.bad, 3, 'marked down by the 3rd consecutive failing check (fall: 3)')
  t.equal(peer(b).down, false, 'the configured `down` flag is untouched')
  t.same(picks(pool, 20), { [a.address]: 20 }, 'a peer down by health check is never picked')

  const goodBefore = h.count('b', 200)
  h.health.b = 200
  await waitFor(() => !peer(b).checkDown, 2000, 'b marked up')
  t.equal((at[1]?.good ?? 0) - goodBefore, 2, 'marked up by the 2nd consecutive passing check (rise: 2)')
  t.same(picks(pool, 20), { [a.address]: 10, [b.address]: 10 }, 'back up: picked again')

  const [down, up] = transitions(lines, b.address)
  t.match(down, { level: 'warn', upstream: 'app', server: b.address, reason: 'status 500' }, 'down: a warn line with upstream, server and reason')
  t.match(down?.msg, /down after 3 failed health checks \(status 500\), upstream: "app", server: 127\.0\.0\.1:\d+/)
  t.match(up, { level: 'info', upstream: 'app', server: b.address, reason: 'status 200' }, 'up: an info line with upstream, server and reason')
  t.match(up?.msg, /up after 2 successful health checks .*upstream: "app", server: 127\.0\.0\.1:\d+/)
  t.equal(transitions(lines, a.address).length, 0, 'no line for a peer that never changed')
})

t.test('active checks (UpstreamPool): what counts as a failing check', async (t) => {
  const table: Array<{ rule: string, check?: { expectStatus?: [number, number], timeout?: number }, fail: (h: ReturnType<typeof healthUpstreams>, b: Upstream) => Promise<void> | void, heal: (h: ReturnType<typeof healthUpstreams>, b: Upstream) => Promise<void> | void, reason: RegExp }> = [
    { rule: 'a status outside expectStatus fails (302 with [200, 299])', check: { expectStatus: [200, 299] }, fail: (h) => { h.health.b = 302 }, heal: (h) => { h.health.b = 204 }, reason: /^status 302$/ },
    { rule: 'a status inside a custom expectStatus passes (404 with [200, 404])', check: { expectStatus: [200, 404] }, fail: (h) => { h.health.b = 503 }, heal: (h) => { h.health.b = 404 }, reason: /^status 503$/ },
    { rule: 'no answer within timeout fails', check: { timeout: 100 }, fail: (h) => { h.health.b = 'hang' }, heal: (h) => { h.health.b = 200 }, reason: /^timed out after 100 ms$/ },
    { rule: 'a refused connection fails (server stopped); restarted, it comes back', fail: (_h, b) => b.stop(), heal: (_h, b) => b.start(), reason: /ECONNREFUSED/ }
  ]
  for (const c of table) {
    await t.test(c.rule, async (t) => {
      const h = healthUpstreams()
      const a = await h.start(t, 'a')
      const b = await h.start(t, 'b')
      const { lines, peer } = await startPool(t, {
        servers: [a.address, b.address],
        healthCheck: { interval: 30, path: '/health', fall: 2, rise: 2, timeout: 300, ...c.check }
      })
      await waitFor(() => (h.checks.b ?? []).length >= 1, 2000, 'a first check of b')
      t.equal(peer(b).checkDown, false, 'up while checks pass')
      await c.fail(h, b)
      await waitFor(() => peer(b).checkDown, 3000, 'b marked down')
      t.match(transitions(lines, b.address)[0], { level: 'warn', upstream: 'app', reason: c.reason }, 'down, with the reason logged')
      await c.heal(h, b)
      await waitFor(() => !peer(b).checkDown, 3000, 'b marked up')
      t.match(transitions(lines, b.address)[1], { level: 'info', upstream: 'app' }, 'up again, logged')
      t.equal(peer(a).checkDown, false, 'the healthy peer stays up')
    })
  }
})

t.test('active checks (UpstreamPool): a configured-down peer is not checked; one peer down by check gives "no live upstreams"', async (t) => {
  const h = healthUpstreams()
  const a = await h.start(t, 'a')
  const b = await h.start(t, 'b')
  const { pool, peer } = await startPool(t, {
    servers: [a.address, { address: b.address, down: true }],
    healthCheck: { interval: 30, path: '/health', fall: 1, rise: 1, timeout: 300 }
  })
  h.health.a = 500
  await waitFor(() => peer(a).checkDown, 2000, 'a marked down')
  t.equal((h.checks.b ?? []).length, 0, 'b (down: true) got no checks')
  t.equal(peer(b).checkDown, false, 'b is down by config, not by check')
  const sel = pool.pick({ tried: new Set() }, Date.now())
  t.match(sel.reason, { code: 'PROXYCTL_UPSTREAM_UNAVAILABLE', counts: { total: 2, down: 2 } }, 'nothing to pick: both count as down')
})

t.test('active checks (UpstreamPool): close() stops the checks', async (t) => {
  const h = healthUpstreams()
  const a = await h.start(t, 'a')
  const { pool } = await startPool(t, { servers: [a.address], healthCheck: { interval: 20, path: '/health' } })
  await waitFor(() => (h.checks.a ?? []).length >= 2, 2000, 'two checks')
  await pool.close()
  const n = (h.checks.a ?? []).length
  await sleep(120)
  t.equal((h.checks.a ?? []).length, n, 'no check after close()')
})

t.test('active checks through the proxy: an upstream failing /health gets no traffic after fall checks, traffic again after rise checks', async (t) => {
  const h = healthUpstreams()
  const a = await h.start(t, 'a')
  const b = await h.start(t, 'b')
  const p = await start(t, appConfig({
    servers: [a.address, b.address],
    healthCheck: { interval: 40, path: '/health', fall: 2, rise: 2, timeout: 300 }
  }), { log: true })
  const cl = client(t, p.url, { connections: 1 })
  const run = async (n: number): Promise<Record<string, number>> => {
    const out: string[] = []
    for (let i = 0; i < n; i++) out.push((await hit(cl)).upstream)
    return countBy(out)
  }
  t.same(await run(10), { a: 5, b: 5 }, 'both healthy: both get traffic')

  h.health.b = 500
  await waitFor(() => transitions(p.lines, b.address).length === 1, 2000, 'the "down" line for b')
  t.same(await run(10), { a: 10 }, 'b failing checks: no traffic to b')
  t.match(transitions(p.lines, b.address)[0], { level: 'warn', upstream: 'app', server: b.address, reason: 'status 500' })

  h.health.b = 200
  await waitFor(() => transitions(p.lines, b.address).length === 2, 2000, 'the "up" line for b')
  t.match(transitions(p.lines, b.address)[1], { level: 'info', upstream: 'app', server: b.address, reason: 'status 200' })
  const back = await run(10)
  t.ok((back.b ?? 0) >= 4, `b healthy again: traffic again ${JSON.stringify(back)}`)
})

t.test('passive: maxFails 2, failTimeout 1000 ms: a stopped upstream gets no traffic for ~1 s after 2 failures, then one trial request', async (t) => {
  const h = healthUpstreams()
  const a = await h.start(t, 'a')
  const b = await h.start(t, 'b')
  await b.stop()
  const p = await start(t, appConfig({ servers: [a.address, { address: b.address, maxFails: 2, failTimeout: 1000 }] }), { log: true, onLine: (l) => { l.at = Date.now() } })
  const cl = client(t, p.url, { connections: 1 })
  const attemptsOnB = (): number[] => p.lines.filter((l) => l.level === 'error' && l.server === b.address).map((l) => l.at as number)

  // Requests every ~20 ms until b has failed 3 times (bounded: 2 s, 150 requests).
  const deadline = Date.now() + 2000
  const statuses: number[] = []
  for (let i = 0; i < 150 && attemptsOnB().length < 3 && Date.now() < deadline; i++) {
    statuses.push((await hit(cl)).status)
    await sleep(20)
  }
  t.ok(statuses.every((s) => s === 200), `all ${statuses.length} requests answered 200: a failed attempt on b is retried on a`)
  const [f1, f2, f3] = attemptsOnB()
  t.ok(f1 !== undefined && f2 !== undefined && f3 !== undefined, 'three failed attempts on b')
  t.ok(f2! - f1! < 200, `the first two failures come within the first few requests (${f2! - f1!} ms apart)`)
  t.ok(f3! - f2! >= 990 && f3! - f2! <= 1200, `after the 2nd failure, nothing for failTimeout, then a trial: ${f3! - f2!} ms`)

  // b starts again; it stays out until failTimeout after the failed trial, then one trial succeeds.
  await b.start()
  const deadline2 = Date.now() + 2000
  for (let i = 0; i < 150 && (h.traffic.b ?? []).length < 3 && Date.now() < deadline2; i++) {
    await hit(cl)
    await sleep(20)
  }
  const firstOk = (h.traffic.b ?? [])[0]
  t.ok(firstOk !== undefined && firstOk - f3! >= 990 && firstOk - f3! <= 1200, `b answers again failTimeout after the failed trial: ${(firstOk ?? NaN) - f3!} ms`)
  t.equal(attemptsOnB().length, 3, 'no other failed attempt')
  t.ok((h.traffic.b ?? []).length >= 3, 'after a successful trial b gets its share again')
})

t.test('passive: maxFails 0 never marks a stopped upstream down: every other request tries it', async (t) => {
  const h = healthUpstreams()
  const a = await h.start(t, 'a')
  const b = await h.start(t, 'b')
  await b.stop()
  const p = await start(t, appConfig({ servers: [a.address, { address: b.address, maxFails: 0, failTimeout: 100 }] }), { log: true })
  const cl = client(t, p.url, { connections: 1 })
  for (let i = 0; i < 20; i++) t.equal((await hit(cl)).status, 200)
  const onB = p.lines.filter((l) => l.level === 'error' && l.server === b.address).length
  t.ok(onB >= 9, `b tried on ${onB} of 20 requests`)
  t.notOk(p.lines.some((l) => /no live upstreams/.test(l.msg)), 'never "no live upstreams"')
})

t.test('every upstream down: 502, and log lines naming the upstream', async (t) => {
  const h = healthUpstreams()
  const a = await h.start(t, 'a')
  const b = await h.start(t, 'b')
  await a.stop()
  await b.stop()
  const p = await start(t, appConfig({ servers: [a.address, b.address] }), { log: true })
  const cl = client(t, p.url, { connections: 1 })

  const first = await hit(cl)
  t.equal(first.status, 502, 'both refuse: 502')
  const errors = p.lines.filter((l) => l.level === 'error' && l.upstream === 'app')
  t.same(errors.map((l) => l.server).sort(), [a.address, b.address].sort(), 'one error line per server tried, naming upstream and server')
  t.match(errors[0]?.msg, /upstream: "app", server: 127\.0\.0\.1:\d+/)

  const second = await hit(cl)
  t.equal(second.status, 502, 'both failed (maxFails 1): 502 at once')
  const noLive = p.lines.find((l) => /no live upstreams/.test(l.msg))
  t.match(noLive, { level: 'error', upstream: 'app', msg: 'no live upstreams in upstream "app" while connecting to upstream' })
  t.match(second.body, /502 Bad Gateway/)
})
