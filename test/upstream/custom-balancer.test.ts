// A user's balancing policy: a function from the request and the servers available now to the
// index of the one to use; unavailable servers are never offered to it.
import t from 'tap'
import { proxy, type RequestContext } from 'proxyctl'
import { request, startConfig, targetOf, urlOf } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'
import { startLogged } from '../helpers/failure.js'

t.test('custom balance function through a real proxy', async (t) => {
  const a = await startUpstream(t, 'a', { port: 0 })
  const b = await startUpstream(t, 'b', { port: 0 })
  const offered: string[][] = []
  const byHeader = (ctx: RequestContext, servers: ReadonlyArray<{ address: string }>): number => {
    offered.push(servers.map((s) => s.address))
    const want = ctx.req.headers['x-pick'] === 'b' ? b.address : a.address
    const i = servers.findIndex((s) => s.address === want)
    return i === -1 ? 0 : i
  }
  const proxyctl = await startConfig(t, {
    upstreams: { app: { servers: [a.address, { address: b.address, maxFails: 1, failTimeout: 60_000 }], balance: byHeader } },
    servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('http://app') } }]
  })
  const target = targetOf(urlOf(proxyctl))
  const cases = [
    { rule: 'the function picks a', pick: 'a', expect: 'a' },
    { rule: 'the function picks b', pick: 'b', expect: 'b' },
    { rule: 'and a again', pick: 'a', expect: 'a' }
  ]
  for (const c of cases) {
    const res = await request(target, { path: '/', headers: { 'x-pick': c.pick } })
    t.equal(res.headers['x-upstream'], c.expect, c.rule)
  }
  t.same(offered[0], [a.address, b.address], 'it is offered every available server')

  await b.stop()
  offered.length = 0
  const failed = await request(target, { path: '/', headers: { 'x-pick': 'b' } })
  t.equal(failed.headers['x-upstream'], 'a', 'b refused: next upstream retries on a server the function picks among the rest')
  t.same(offered, [[a.address, b.address], [a.address]], 'the retry is offered only the untried servers')
  offered.length = 0
  await request(target, { path: '/', headers: { 'x-pick': 'b' } })
  t.same(offered[0], [a.address], 'b is unavailable for failTimeout: not offered')
})

t.test('a balance function that fails is the 502 of no server, logged with its own code', async (t) => {
  const a = await startUpstream(t, 'a', { port: 0 })
  const cases = [
    { rule: 'a function that throws', balance: (): number => { throw new Error('boom') }, reason: /custom balancer threw in upstream "app"/ },
    { rule: 'a function that returns no server', balance: (): number => 7, reason: /custom balancer returned 7 for 1 servers in upstream "app"/ }
  ]
  for (const c of cases) {
    const { proxy: running, errors } = await startLogged(t, {
      upstreams: { app: { servers: [a.address], balance: c.balance } },
      servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('http://app') } }]
    })
    const res = await request(targetOf(urlOf(running)), { path: '/' })
    t.equal(res.status, 502, `${c.rule}: 502`)
    const lines = errors()
    t.equal(lines.length, 1, `${c.rule}: one error line`)
    t.match(lines[0], { code: 'PROXYCTL_BALANCER_ERROR', upstream: 'app', reason: c.reason }, `${c.rule}: its code, upstream and reason`)
  }
})
