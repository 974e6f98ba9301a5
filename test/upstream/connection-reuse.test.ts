// Upstream connections are kept alive and reused (one undici Pool per server): steady load opens
// no new connection per request; maxConns bounds them.
import http from 'node:http'
import path from 'node:path'
import t from 'tap'
import { proxy } from 'proxyctl'
import { startConfig, targetOf, tmpDir, urlOf } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

function counting (up: Upstream): () => number {
  let n = 0
  const before = new Set(up.sockets)
  const timer = setInterval(() => { for (const s of up.sockets) if (!before.has(s)) { before.add(s); n++ } }, 1)
  return () => { clearInterval(timer); for (const s of up.sockets) if (!before.has(s)) { before.add(s); n++ }; return n }
}

t.test('connection reuse to upstreams', async (t) => {
  const dir = tmpDir(t)
  const tcp = await startUpstream(t, 'tcp', { port: 0 })
  const unix = await startUpstream(t, 'unix', { path: path.join(dir, 'up.sock') })
  const limited = await startUpstream(t, 'limited', { port: 0 })
  const proxyctl = await startConfig(t, {
    upstreams: {
      tcp: { servers: [tcp.address] },
      unix: { servers: [unix.address] },
      limited: { servers: [{ address: limited.address, maxConns: 2 }] }
    },
    servers: [
      { listen: '127.0.0.1:0', serverName: 'tcp', locations: { '/': proxy('http://tcp') } },
      { listen: '127.0.0.1:0', serverName: 'unix', locations: { '/': proxy('http://unix') } },
      { listen: '127.0.0.1:0', serverName: 'limited', locations: { '/': proxy('http://limited') } }
    ]
  })
  // All three servers share one listener; pick by Host through a tiny wrapper.
  const port = targetOf(urlOf(proxyctl)).port as number
  const hostRun = async (host: string, total: number, concurrency: number): Promise<Record<number, number>> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
    const statuses: Record<number, number> = {}
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < total) {
        next++
        await new Promise<void>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port, path: '/', agent, headers: { host } }, (res) => {
            statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1
            res.resume(); res.on('end', resolve)
          }).on('error', reject)
        })
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    agent.destroy()
    return statuses
  }
  const cases: Array<{ rule: string, host: string, up: Upstream, total: number, concurrency: number, max: number, busy502?: boolean }> = [
    { rule: '300 sequential requests over TCP use one upstream connection', host: 'tcp', up: tcp, total: 300, concurrency: 1, max: 1 },
    { rule: '300 sequential requests over a unix socket use one upstream connection', host: 'unix', up: unix, total: 300, concurrency: 1, max: 1 },
    { rule: '600 requests, 10 at a time, use at most 10 upstream connections', host: 'tcp', up: tcp, total: 600, concurrency: 10, max: 10 },
    // nginx's max_conns: a server at its limit is unavailable; with none left, 502 (no queue).
    { rule: 'maxConns: 2 holds 20 concurrent clients to 2 upstream connections; the excess gets 502', host: 'limited', up: limited, total: 400, concurrency: 20, max: 2, busy502: true }
  ]
  for (const c of cases) {
    const done = counting(c.up)
    c.up.reset()
    const statuses = await hostRun(c.host, c.total, c.concurrency)
    const opened = done()
    if (c.busy502 === true) {
      t.equal((statuses[200] ?? 0) + (statuses[502] ?? 0), c.total, `${c.rule}: every request answered 200 or 502`)
      t.ok((statuses[502] ?? 0) > 0 && (statuses[200] ?? 0) >= c.max, `${c.rule}: some served, the excess refused (${JSON.stringify(statuses)})`)
      t.equal(c.up.seen.length, statuses[200], `${c.rule}: the upstream saw exactly the served ones`)
    } else {
      t.same(statuses, { 200: c.total }, `${c.rule}: every request answered`)
      t.equal(c.up.seen.length, c.total, `${c.rule}: the upstream saw each once`)
    }
    t.ok(opened <= c.max, `${c.rule}: opened ${opened} (at most ${c.max})`)
  }
})
