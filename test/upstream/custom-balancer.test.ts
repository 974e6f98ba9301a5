// A user's balancing policy: a function from the request and the servers available now to the
// index of the one to use; unavailable servers are never offered to it.
import t from 'tap'
import { proxy, type RequestContext } from 'proxyctl'
import { request, startConfig, targetOf, urlOf } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'

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
