// Phase hooks: upstreamRequest, upstreamResponse and upstreamError run for proxied requests, in
// scope order (outer first), and only in the scope they were registered in.
import t from 'tap'
import { addPhaseHook, proxy, respond, type FastifyInstance } from 'proxyctl'
import { request, startConfig, targetOf, urlOf } from '../helpers/proxy.js'
import { startUpstream, type EchoReply } from '../helpers/upstream.js'

const order: string[] = []
const tag = (name: string) => async function tagPlugin (f: FastifyInstance) {
  addPhaseHook(f, 'upstreamRequest', (_ctx, head) => { order.push(`req:${name}`); head.headers.push('X-Tag', name) })
  addPhaseHook(f, 'upstreamResponse', (_ctx, head) => { head.headers.push('X-Served-By', head.peer); if (name === 'loc') head.status = 299 })
  addPhaseHook(f, 'upstreamError', (_ctx, failure) => { order.push(`err:${name}:${failure.code}`) })
}

t.test('phase hooks through a real proxy', async (t) => {
  const up = await startUpstream(t, 'app', { port: 0 })
  const proxyctl = await startConfig(t, {
    plugins: [tag('global')],
    upstreams: { dead: { servers: ['127.0.0.1:9'] } },
    servers: [{
      listen: '127.0.0.1:0',
      locations: {
        '/hooked/': { plugins: [tag('loc')], handler: proxy(`http://${up.address}`) },
        '/plain/': proxy(`http://${up.address}`),
        '/dead/': proxy('http://dead')
      }
    }]
  })
  const target = targetOf(urlOf(proxyctl))

  const hooked = await request(target, { path: '/hooked/x' })
  const seen = JSON.parse(hooked.body) as EchoReply
  t.same(seen.rawHeaders.filter((_, i, a) => i % 2 === 1 && a[i - 1] === 'X-Tag'), ['global', 'loc'], 'upstreamRequest hooks ran outer scope first and changed the headers sent')
  t.equal(hooked.status, 299, 'upstreamResponse may change the status')
  t.equal(hooked.headers['x-served-by'], `${up.address}, ${up.address}`, 'upstreamResponse sees the chosen peer')

  order.length = 0
  const plain = await request(target, { path: '/plain/x' })
  t.same((JSON.parse(plain.body) as EchoReply).rawHeaders.filter((_, i, a) => i % 2 === 1 && a[i - 1] === 'X-Tag'), ['global'], 'a sibling location sees only the global hook')
  t.equal(plain.status, 200)
  t.same(order, ['req:global'])

  order.length = 0
  const dead = await request(target, { path: '/dead/' })
  t.equal(dead.status, 502)
  t.same(order, ['req:global', 'err:global:PROXYCTL_UPSTREAM_CONNECT_FAILED'], 'upstreamError observes the failed attempt')
})

t.test('auto_redirect: a proxy prefix location ending in "/" answers its path without the slash with 301', async (t) => {
  const up = await startUpstream(t, 'app', { port: 0 })
  const proxyctl = await startConfig(t, {
    servers: [{
      listen: '127.0.0.1:0',
      locations: {
        '/user/': proxy(`http://${up.address}`),
        '~ ^/user$': respond(200, 'regex'),
        '/exact/': proxy(`http://${up.address}`),
        '= /exact': proxy(`http://${up.address}/mine`)
      }
    }]
  })
  const target = targetOf(urlOf(proxyctl))
  const cases: Array<{ rule: string, path: string, status: number, location?: string, upstreamUrl?: string }> = [
    { rule: 'the path without the slash redirects, query kept, regexes not checked', path: '/user?a=1', status: 301, location: `${urlOf(proxyctl)}/user/?a=1` },
    { rule: 'the prefix itself is proxied', path: '/user/', status: 200, upstreamUrl: '/user/' },
    { rule: 'a longer path is proxied', path: '/users', status: 404 },
    { rule: 'an exact location of the user wins over the auto redirect', path: '/exact', status: 200, upstreamUrl: '/mine' }
  ]
  for (const c of cases) {
    const res = await request(target, { path: c.path })
    t.equal(res.status, c.status, `${c.rule}: status`)
    if (c.location !== undefined) t.equal(res.headers.location, c.location, `${c.rule}: Location`)
    if (c.upstreamUrl !== undefined) t.equal((JSON.parse(res.body) as EchoReply).url, c.upstreamUrl, `${c.rule}: upstream URL`)
  }
})

t.test('the fast path is taken only where no plugin or error page could observe the request', async (t) => {
  const up = await startUpstream(t, 'app', { port: 0 })
  const noop = async function noop (): Promise<void> {}
  const proxyctl = await startConfig(t, {
    servers: [
      {
        listen: '127.0.0.1:0',
        serverName: 'a',
        locations: {
          '/bare/': proxy(`http://${up.address}`),
          '/plugged/': { plugins: [noop], handler: proxy(`http://${up.address}`) },
          '/errors/': { errorPages: { 502: '/bare/' }, handler: proxy(`http://${up.address}`) },
          '/outer/': { plugins: [noop], locations: { '/outer/inner/': proxy(`http://${up.address}`) } }
        }
      },
      { listen: '127.0.0.1:0', serverName: 'b', plugins: [noop], locations: { '/bare/': proxy(`http://${up.address}`) } }
    ]
  })
  const fast = (server: number, key: string): boolean => {
    const loc = proxyctl.app.config.servers[server]?.all.find((l) => l.key === key)
    return loc?.fastPath !== undefined
  }
  const cases: Array<[string, number, string, boolean]> = [
    ['a bare proxy location', 0, '/bare/', true],
    ['a location with a plugin', 0, '/plugged/', false],
    ['a location with error pages', 0, '/errors/', false],
    ['a location nested in one with a plugin', 0, '/outer/inner/', false],
    ['a location of a server with a plugin', 1, '/bare/', false]
  ]
  for (const [rule, server, key, expect] of cases) t.equal(fast(server, key), expect, `${rule}: fast path ${expect ? 'taken' : 'not taken'}`)
  const res = await request(targetOf(urlOf(proxyctl)), { path: '/bare/x', headers: { host: 'a' } })
  t.equal((JSON.parse(res.body) as EchoReply).url, '/bare/x', 'the fast path proxies like the Fastify chain')
})
