// The proxy cache (README, "Proxy cache"): the RFC 9111 / nginx table of cache-cases.ts against
// proxyctl through real sockets and a real upstream (compared whole with nginx by
// fixtures/cache-nginx-compare.ts), the lock, and the config's checks.
import fs from 'node:fs'
import http2 from 'node:http2'
import path from 'node:path'
import t from 'tap'
import { resolveConfig, startProxy, type ProxyConfig, type ServerConfig } from '@proxyctl/core'
import { renderText } from '@proxyctl/core/internal'
import { proxy } from '@proxyctl/plugins'
import { freePort } from '../helpers/failure.js'
import { waitFor, type Teardown } from '../helpers/lifecycle.js'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { cases, playAll, proxyctlConfig, startCacheUpstream, spreadOf, verdict, type CacheUpstream, type StepResult } from './fixtures/cache-cases.js'

/** A temp dir, the table's upstream on a unix socket in it, a free port and the table's config for it. */
async function setup (t: Teardown): Promise<{ dir: string, sock: string, up: CacheUpstream, port: number, base: ProxyConfig, server: ServerConfig }> {
  const dir = tmpDir(t)
  const sock = path.join(dir, 'up.sock')
  const up = await startCacheUpstream(t, sock)
  const port = await freePort()
  const base = proxyctlConfig(port, sock, path.join(dir, 'dead.sock'))
  return { dir, sock, up, port, base, server: base.servers[0] as ServerConfig }
}

/** One GET (or `method`) through proxyctl: its X-Cache-Status. */
async function cacheStatusOf (port: number, up: CacheUpstream, p: string, after = 0): Promise<string> {
  const [r] = await playAll(port, [{ name: p, steps: [{ path: p, after, expect: { status: 0, cache: '', upstream: 0 } }] }], up)
  return verdict(r?.[0] as StepResult, 0).cache
}

t.test('the cache table against proxyctl: status, $upstream_cache_status and upstream requests, step by step', async (t) => {
  const { dir, sock, up, port } = await setup(t)
  await startConfig(t, proxyctlConfig(port, sock, path.join(dir, 'dead.sock')))
  const all = await playAll(port, cases, up)
  cases.forEach((c, n) => {
    const results = all[n] as StepResult[]
    let seen = 0
    results.forEach((r, i) => {
      seen += r.upstream.length
      const step = c.steps[i] as (typeof c.steps)[number]
      if (step.spread !== undefined) t.same(spreadOf(r), step.spread, `${c.name}: X-Cache-Status of the ${step.parallel ?? 0} answers`)
      t.same(verdict(r, seen), step.expect, `${c.name}: step ${i + 1} (${step.method ?? 'GET'} ${step.path}${step.parallel !== undefined ? ` ×${step.parallel}, the most common answer` : ''})`)
    })
  })
})

t.test('$upstream_cache_status in the access log, and the cache figures in metrics', async (t) => {
  const { dir, sock, up, port } = await setup(t)
  const log = path.join(dir, 'access.log')
  const config = resolveConfig({
    ...proxyctlConfig(port, sock, path.join(dir, 'dead.sock')),
    logFormats: { cache: '$request_uri $status $upstream_cache_status' },
    accessLog: { path: log, format: 'cache' }
  })
  const proxy = await startProxy(config, { logger: false, announce: false })
  t.teardown(() => proxy.close(0))
  await playAll(port, [{ name: 'fill and hit', steps: [
    { path: '/c/maxage/m1', expect: { status: 200, cache: 'MISS', upstream: 1 } },
    { path: '/c/maxage/m1', expect: { status: 200, cache: 'HIT', upstream: 1 } },
    { path: '/by/plain/m2', headers: { 'X-Bypass': '1' }, expect: { status: 200, cache: 'BYPASS', upstream: 1 } }
  ] }], up)
  t.ok(await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').split('\n').length >= 4, 3000), 'three access lines')
  t.same(fs.readFileSync(log, 'utf8').trim().split('\n'), ['/c/maxage/m1 200 MISS', '/c/maxage/m1 200 HIT', '/by/plain/m2 200 BYPASS'], '$upstream_cache_status logged per request')
  const text = renderText(config.metrics.registry.snapshot())
  for (const [status, n] of [['MISS', 1], ['HIT', 1], ['BYPASS', 1], ['STALE', 0]] as const) {
    t.match(text, new RegExp(`^proxyctl_cache_requests_total\\{zone="main",status="${status}"\\} ${n}$`, 'm'), `proxyctl_cache_requests_total ${status} ${n}`)
  }
  const bytes = Number(/^proxyctl_cache_size_bytes\{zone="main"\} (\d+)$/m.exec(text)?.[1])
  t.ok(bytes > 0 && bytes < 4096, `proxyctl_cache_size_bytes counts the stored entries (${bytes})`)
  t.match(text, /^proxyctl_cache_entries\{zone="main"\} 2$/m, 'two entries (the MISS filled one, the BYPASS another)')
})

t.test('purge (NGINX Plus\'s proxy_cache_purge): PURGE removes the entry (204), none left: 404; the next GET is a MISS', async (t) => {
  const { dir, sock, up, port, base, server } = await setup(t)
  await startConfig(t, {
    ...base,
    maps: { purge_method: { source: '$request_method', values: { PURGE: '1', default: '' } } },
    servers: [{ ...server, locations: { '/': proxy(`http://unix:${sock}`, { cache: { zone: 'main', purge: ['$purge_method'] } }) } }]
  })
  const table: Array<[string, string, number, string, string]> = [
    // method, path, status, X-Cache-Status, body
    ['GET', '/c/maxage/p1', 200, 'MISS', 'maxage p1 n=1\n'],
    ['GET', '/c/maxage/p1', 200, 'HIT', 'maxage p1 n=1\n'],
    ['PURGE', '/c/maxage/p1', 204, '', ''],
    ['PURGE', '/c/maxage/p1', 404, '', ''],
    ['GET', '/c/maxage/p1', 200, 'MISS', 'maxage p1 n=2\n'],
    ['PURGE', '/c/vary/p2', 404, '', ''],
    ['GET', '/c/vary/p2', 200, 'MISS', 'vary p2 n=1\n'],
    ['PURGE', '/c/vary/p2', 204, '', ''],
    ['GET', '/c/vary/p2', 200, 'MISS', 'vary p2 n=2\n']
  ]
  for (const [method, p, status, cache, body] of table) {
    const [r] = await playAll(port, [{ name: p, steps: [{ path: p, method, expect: { status, cache, upstream: 0 } }] }], up)
    const answer = r?.[0]?.answers ?? []
    const got = { status: verdict(r?.[0] as StepResult, 0).status, cache: verdict(r?.[0] as StepResult, 0).cache, body: /^ {2}body "(.*)"$/.exec(answer.at(-1) ?? '')?.[1]?.replace(/\\n/g, '\n') ?? '' }
    t.same(got, { status, cache, body: status === 404 ? got.body : body }, `${method} ${p}: ${status} ${cache}`)
  }
})

t.test('the memory store stays within maxSize: the least recently used entry goes first', async (t) => {
  const { dir, sock, up, port, base, server } = await setup(t)
  // An entry here counts about 400 bytes (body, headers, 256 of overhead): 1k holds two.
  await startConfig(t, { ...base, caches: { tiny: { maxSize: '1k' } }, servers: [{ ...server, locations: { '/': proxy(`http://unix:${sock}`, { cache: { zone: 'tiny' } }) } }] })
  const table: Array<[string, string]> = [
    ['/c/maxage/l1', 'MISS'], ['/c/maxage/l2', 'MISS'], ['/c/maxage/l1', 'HIT'],
    // l3 pushes out the least recently used, l2 (l1 was just used).
    ['/c/maxage/l3', 'MISS'], ['/c/maxage/l1', 'HIT'], ['/c/maxage/l3', 'HIT'], ['/c/maxage/l2', 'MISS']
  ]
  for (const [p, cache] of table) t.equal(await cacheStatusOf(port, up, p), cache, `GET ${p}: ${cache}`)
})

t.test('over h2c the cache answers as over HTTP/1.1: MISS, then a HIT with the same body', async (t) => {
  const { dir, sock, up, port, base, server } = await setup(t)
  await startConfig(t, { ...base, servers: [{ ...server, listen: { address: `127.0.0.1:${port}`, http2: true } }] })
  const session = http2.connect(`http://127.0.0.1:${port}`)
  t.teardown(() => { session.close() })
  const get = (p: string): Promise<{ status: number, cache: string, body: string }> => new Promise((resolve, reject) => {
    const s = session.request({ ':path': p })
    let status = 0
    let cache = ''
    let body = ''
    s.on('response', (h) => { status = Number(h[':status']); cache = String(h['x-cache-status'] ?? '') })
    s.on('data', (d: Buffer) => { body += d.toString() })
    s.on('end', () => resolve({ status, cache, body }))
    s.on('error', reject)
  })
  t.same(await get('/c/maxage/h1'), { status: 200, cache: 'MISS', body: 'maxage h1 n=1\n' }, 'MISS over h2c')
  t.same(await get('/c/maxage/h1'), { status: 200, cache: 'HIT', body: 'maxage h1 n=1\n' }, 'HIT over h2c')
  t.equal(up.counts.get('h1'), 1, 'the upstream asked once')
})

t.test('maxSize and inactive on the memory and the disk store', async (t) => {
  const { dir, sock, up, port, base, server } = await setup(t)
  const app = `http://unix:${sock}`
  await startConfig(t, {
    ...base,
    caches: { disk: { store: { path: path.join(dir, 'cache') }, maxSize: '1k' }, memIdle: { inactive: 1000 }, diskIdle: { store: { path: path.join(dir, 'idle') }, inactive: 1000 } },
    servers: [{ ...server, locations: {
      '/c/': proxy(app, { cache: { zone: 'disk' } }),
      '/i/': proxy(`${app}:/c/`, { cache: { zone: 'memIdle' } }),
      '/j/': proxy(`${app}:/c/`, { cache: { zone: 'diskIdle' } })
    } }]
  })
  const status = async (p: string, after = 0): Promise<string> => await cacheStatusOf(port, up, p, after)
  // Five entries of some 400 bytes into 1k: the most recent stays, the oldest went, the folder within 1k.
  for (const k of ['k1', 'k2', 'k3', 'k4', 'k5']) t.equal(await status(`/c/maxage/${k}`), 'MISS', `disk, maxSize 1k: GET /c/maxage/${k}: MISS`)
  const sizes = (): number[] => fs.readdirSync(path.join(dir, 'cache'), { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && !d.parentPath.endsWith('tmp')).map((d) => fs.statSync(path.join(d.parentPath, d.name)).size)
  const total = (): number => sizes().reduce((a, b) => a + b, 0)
  // Evicted files are removed in the background.
  t.ok(await waitFor(() => total() <= 1024, 2000), `the folder holds ${sizes().length} entries, ${total()} bytes: within maxSize`)
  t.equal(await status('/c/maxage/k5'), 'HIT', 'the most recently stored entry is a HIT')
  t.equal(await status('/c/maxage/k1'), 'MISS', 'the least recently used went first: MISS')
  const idle: Array<[string, number, string]> = [
    ['/i/maxage/q1', 0, 'MISS'], ['/i/maxage/q1', 0, 'HIT'], ['/i/maxage/q1', 1500, 'MISS'],
    ['/j/maxage/q2', 0, 'MISS'], ['/j/maxage/q2', 0, 'HIT'], ['/j/maxage/q2', 1500, 'MISS']
  ]
  for (const [p, after, want] of idle) t.equal(await status(p, after), want, `inactive 1000: GET ${p}${after > 0 ? ` after ${after} ms` : ''}: ${want} (max-age=60 still fresh)`)
})
