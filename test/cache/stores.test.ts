// The cache's stores beyond memory, through real proxyctl processes: a folder (across a restart,
// after a crash mid-store, a torn file) and a Redis (Debian's redis-server on a unix socket)
// shared by two processes, then killed mid-test.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import t from 'tap'
import { freePort } from '../helpers/failure.js'
import { waitFor, type Teardown } from '../helpers/lifecycle.js'
import { configDir, startCli, writeConfig } from '../helpers/proxy.js'
import { startCacheUpstream } from './fixtures/cache-cases.js'

/** A GET through proxyctl: status, X-Cache-Status, body. */
function get (port: number, p: string): Promise<{ status: number, cache: string, body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, cache: String(res.headers['x-cache-status'] ?? ''), body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

const config = (store: string, port: number | string, sock: string, metrics = ''): string => `import { defineConfig, proxy } from 'proxyctl'
export default defineConfig({
  caches: { z: { store: ${store}, maxSize: '64m' } },${metrics}
  servers: [{
    listen: '127.0.0.1:${port}',
    addHeaders: { 'X-Cache-Status': { value: '$upstream_cache_status', always: true } },
    locations: { '/': proxy('http://unix:${sock}', { cache: { zone: 'z', valid: { 200: 60000 } } }) }
  }]
})
`

t.test('disk store: survives a restart; a crash mid-store leaves no entry; a torn file is a MISS', async (t) => {
  const dir = configDir(t)
  const sock = path.join(dir, 'up.sock')
  const up = await startCacheUpstream(t, sock)
  const cache = path.join(dir, 'cache')
  const port = await freePort()
  const file = writeConfig(dir, config(`{ path: '${cache}' }`, port, sock))
  let cli = await startCli(t, ['-c', file, '--log-format', 'json'])

  t.same(await summary(port, '/c/plain/d1'), { status: 200, cache: 'MISS', body: 'plain d1 n=1\n' }, 'first request: MISS, stored in the folder')
  t.same(await summary(port, '/c/plain/d1'), { status: 200, cache: 'HIT', body: 'plain d1 n=1\n' }, 'second: HIT')
  t.equal(await cli.stop('SIGTERM'), 0, 'proxyctl stops')
  cli = await startCli(t, ['-c', file, '--log-format', 'json'])
  t.same(await summary(port, '/c/plain/d1'), { status: 200, cache: 'HIT', body: 'plain d1 n=1\n' }, 'after a restart: HIT from the folder')
  t.equal(up.counts.get('d1'), 1, 'the upstream was asked once')

  // kill -9 while a 4 MiB answer passes (it would be stored at its end).
  const received = await new Promise<number>((resolve) => {
    let n = 0
    const req = http.get({ host: '127.0.0.1', port, path: '/c/big/d2', agent: false }, (res) => {
      res.on('data', (d: Buffer) => {
        n += d.length
        if (n >= 512 * 1024 && cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL')
      })
      res.on('error', () => resolve(n))
      res.on('close', () => resolve(n))
    })
    req.on('error', () => resolve(n))
  })
  t.ok(received >= 512 * 1024 && received < 4 * 1024 * 1024, `the client got part of the answer (${received} bytes) when proxyctl was killed`)
  await waitFor(() => cli.child.signalCode !== null, 5000)
  cli = await startCli(t, ['-c', file, '--log-format', 'json'])
  const big = await get(port, '/c/big/d2')
  t.same({ status: big.status, cache: big.cache, length: big.body.length }, { status: 200, cache: 'MISS', length: 4 * 1024 * 1024 }, 'after the crash: a MISS, the whole answer from the upstream (no torn entry)')
  t.same(fs.readdirSync(path.join(cache, 'tmp')), [], 'no temp file left in the folder')
  t.same((await get(port, '/c/big/d2')).cache, 'HIT', 'stored whole this time: HIT')

  // A file cut short (a disk that lost its tail): not an entry.
  // The store's own temp folder is left out (not any "tmp" in the path: a checkout may live under /tmp).
  const files = listFiles(cache).filter((f) => !f.startsWith(path.join(cache, 'tmp') + path.sep))
  for (const f of files) fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2))
  t.same(await summary(port, '/c/plain/d1'), { status: 200, cache: 'MISS', body: 'plain d1 n=2\n' }, 'a torn file is a MISS, asked again')
  t.same(await summary(port, '/c/plain/d1'), { status: 200, cache: 'HIT', body: 'plain d1 n=2\n' }, 'and stored again')
  t.match(cli.output(), /"level":30/, 'proxyctl logged as usual')
  t.notMatch(cli.output(), /"level":50/, 'no error line: a torn file is not a failure of the store')
})

const hasRedis = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0

t.test('Redis store: a fill through one process is a HIT through another; Redis killed: MISSes, one warn line, counted', { skip: hasRedis ? false : 'redis-server is not installed' }, async (t) => {
  const dir = configDir(t)
  const sock = path.join(dir, 'up.sock')
  const up = await startCacheUpstream(t, sock)
  const redisSock = path.join(dir, 'redis.sock')
  const redis = startRedis(t, redisSock)
  t.ok(await waitFor(() => spawnSync('redis-cli', ['-s', redisSock, 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG', 5000), 'redis-server answers')
  const [pa, pb, ma] = [await freePort(), await freePort(), await freePort()]
  const a = await startCli(t, ['-c', writeConfig(dir, config(`{ redis: 'unix:${redisSock}' }`, pa, sock, `\n  metrics: { listen: '127.0.0.1:${ma}' },`), 'a.config.ts'), '--log-format', 'json'])
  const b = await startCli(t, ['-c', writeConfig(dir, config(`{ redis: 'unix:${redisSock}' }`, pb, sock), 'b.config.ts'), '--log-format', 'json'])
  t.same(await summary(pa, '/c/plain/r1'), { status: 200, cache: 'MISS', body: 'plain r1 n=1\n' }, 'through A: MISS, stored in Redis')
  t.same(await summary(pb, '/c/plain/r1'), { status: 200, cache: 'HIT', body: 'plain r1 n=1\n' }, 'through B: HIT from what A stored')
  t.equal(up.counts.get('r1'), 1, 'the upstream was asked once for both')

  redis.kill('SIGKILL')
  await waitFor(() => redis.exitCode !== null || redis.signalCode !== null, 3000)
  const after = []
  for (let i = 0; i < 3; i++) after.push(await summary(pa, '/c/plain/r2'))
  t.same(after.map((r) => `${r.status} ${r.cache}`), ['200 MISS', '200 MISS', '200 MISS'], 'Redis down: every request served, a MISS')
  t.same((await summary(pa, '/c/plain/r1')).cache, 'MISS', 'an entry Redis held is a MISS too (nothing to ask)')
  const warns = a.output().split('\n').filter((l) => l.includes('"code":"PROXYCTL_CACHE_STORE_UNAVAILABLE"'))
  t.equal(warns.length, 1, 'one warn line for the outage, not one per request')
  t.match(warns[0], /"level":40.*cache \\"z\\" on redis unix:/, 'at warn, naming the zone and the store')
  const text = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: ma, path: '/metrics', agent: false }, (res) => { let s = ''; res.on('data', (d: Buffer) => { s += d.toString() }); res.on('end', () => resolve(s)) }).on('error', reject)
  })
  const errors = Number(/^proxyctl_cache_store_errors_total\{zone="z"\} (\d+)$/m.exec(text)?.[1] ?? 0)
  t.ok(errors >= 4, `proxyctl_cache_store_errors_total counts the skipped lookups (${errors})`)
  t.match(text, /^proxyctl_cache_requests_total\{zone="z",status="MISS"\} 5$/m, 'the MISSes counted')
  void b
})

function startRedis (t: Teardown, sock: string): ReturnType<typeof spawn> {
  const redis = spawn('redis-server', ['--port', '0', '--unixsocket', sock, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  t.teardown(() => { if (redis.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL') })
  return redis
}

async function summary (port: number, p: string): Promise<{ status: number, cache: string, body: string }> {
  const r = await get(port, p)
  return { status: r.status, cache: r.cache, body: r.body.toString() }
}

function listFiles (dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name))
}
