/**
 * Response buffering (nginx's proxy_buffering, proxy() `buffering`, `buffers`,
 * `maxTempFileSize`): a slow client does not hold the upstream back; the answer waits in memory,
 * then in one temp file under tempPath, which never outlives its response. The table's cases are
 * fixtures/buffering-cases.ts, checked against nginx by fixtures/buffering-nginx-compare.ts.
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { RunningProxy } from '@proxyctl/core'
import { proxy, type ProxyOptions } from '@proxyctl/plugins'
import { waitFor, type Teardown } from '../helpers/lifecycle.js'
import { activeConnections } from '../helpers/failure.js'
import { captureLogger, type LogLine } from '../helpers/log.js'
import { startConfig, targetOf, tmpDir, urlOf } from '../helpers/proxy.js'
import { listenOn } from '../helpers/upstream.js'
import { bodyHash, bufferingCases, bufferingUpstream, KiB, MiB, observe, slowGet, UPSTREAM_SOCKET, type Finished } from './fixtures/buffering-cases.js'

/** Descriptors this process holds open on files under `dir` (an unlinked temp file too). */
function openUnder (dir: string): string[] {
  const out: string[] = []
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`)
      if (target.startsWith(dir + path.sep)) out.push(target)
    } catch {}
  }
  return out
}

t.test('a slow client of a buffered or unbuffered answer', async (t) => {
  const finished: Finished = new Map()
  const up = bufferingUpstream(finished)
  const tempPath = tmpDir(t, 'proxyctl-buf-')
  // A unix socket to the upstream: its buffers are fixed, where TCP's grow (UPSTREAM_SOCKET).
  const address = await listenOn(up, { path: path.join(tmpDir(t, 'proxyctl-buf-up-'), UPSTREAM_SOCKET) })
  t.teardown(() => { up.closeAllConnections(); up.close() })
  const locations: Record<string, ReturnType<typeof proxy>> = {}
  bufferingCases.forEach((c, i) => { locations[`/c${i}/`] = proxy(`http://${address}:/`, c.options as ProxyOptions) })
  const p = await startConfig(t, { tempPath, servers: [{ listen: '127.0.0.1:0', locations }] })
  const port = targetOf(urlOf(p)).port as number

  for (const [i, c] of bufferingCases.entries()) {
    const got = await observe(c, port, `/c${i}/`, finished, `p${i}`)
    t.same(got, c.expect, c.name)
  }
  t.same(fs.readdirSync(tempPath), [], 'no temp file is left in tempPath')
  t.same(openUnder(tempPath), [], 'no temp file is left open')
})

/** A buffering proxy in front of the buffering upstream; `connections`: upstream connections accepted. */
async function setup (t: Teardown, options: ProxyOptions = {}, tempPath = tmpDir(t, 'proxyctl-buf-')): Promise<{ port: number, proxy: RunningProxy, finished: Finished, connections: () => number, tempPath: string, lines: LogLine[] }> {
  const finished: Finished = new Map()
  const up = bufferingUpstream(finished)
  let connections = 0
  up.on('connection', () => { connections++ })
  const address = await listenOn(up, { port: 0 })
  t.teardown(() => { up.closeAllConnections(); up.close() })
  const { logger, lines } = captureLogger()
  const p = await startConfig(t, { tempPath, servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy(`http://${address}`, options) } }] }, logger)
  return { port: targetOf(urlOf(p)).port as number, proxy: p, finished, connections: () => connections, tempPath, lines }
}

/** A client that sends `GET /SIZE?id=ID` and reads nothing until told; `close` cuts it. */
function pausedClient (port: number, size: number, id: string): { sock: net.Socket, closed: Promise<number> } {
  const sock = net.connect(port, '127.0.0.1')
  sock.pause()
  sock.write(`GET /${size}?id=${id} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
  let bytes = 0
  sock.on('data', (d: Buffer) => { bytes += d.length })
  sock.on('error', () => {})
  return { sock, closed: new Promise((resolve) => sock.on('close', () => resolve(bytes))) }
}

t.test('the temp file lives only as long as its response', async (t) => {
  const endings: Array<{ name: string, end: (c: { sock: net.Socket }, proxy: RunningProxy) => Promise<unknown> }> = [
    { name: 'the client reads the whole answer', end: async ({ sock }) => { sock.resume(); await waitFor(() => sock.bytesRead >= 16 * MiB, 10_000, 'the whole answer') } },
    { name: 'the client leaves midway', end: async ({ sock }) => { sock.destroy() } },
    { name: 'the proxy shuts down', end: async (_, proxy) => { await proxy.close(0) } }
  ]
  for (const e of endings) {
    const s = await setup(t)
    const c = pausedClient(s.port, 16 * MiB, 'x')
    await waitFor(() => s.finished.has('x'), 5000, 'the upstream to finish')
    t.equal(openUnder(s.tempPath).length, 1, `${e.name}: while the client is behind, one temp file is open`)
    t.same(fs.readdirSync(s.tempPath), [], `${e.name}: and unlinked already`)
    await e.end(c, s.proxy)
    t.ok(await waitFor(() => openUnder(s.tempPath).length === 0, 3000), `${e.name}: the temp file is closed`)
    c.sock.destroy()
  }
})

t.test('a temp file that cannot be made: the client is cut, one error line, the proxy serves on', async (t) => {
  const dir = tmpDir(t, 'proxyctl-buf-')
  const file = path.join(dir, 'a-file')
  fs.writeFileSync(file, '')
  const s = await setup(t, {}, path.join(file, 'tmp'))
  const got = await slowGet(s.port, `/${16 * MiB}?id=bad`)
  t.ok(got.bytes < 16 * MiB, `the client got ${got.bytes} bytes of ${16 * MiB}, then the connection was cut`)
  const errors = s.lines.filter((l) => l.level === 'error')
  t.match(errors, [{ code: 'PROXYCTL_TEMP_FILE_FAILED', errno: 'ENOTDIR', tempPath: path.join(file, 'tmp'), client: '127.0.0.1' }], 'one error line with the code, errno, tempPath and client')
  t.equal(errors.length, 1, 'only one')
  const small = await slowGet(s.port, `/${64 * KiB}?id=small`, 0)
  t.same([small.status, small.bytes], [200, 64 * KiB], 'the next request is answered')
})

t.test('a client that leaves after the upstream finished: the upstream connection is kept and reused', async (t) => {
  const rows = [
    { name: 'buffering on: the upstream was done and its connection released while the client read nothing, then reused', options: {}, released: true, connections: 1 },
    { name: 'buffering: false: the upstream was held back, its request is aborted and a new connection made', options: { buffering: false }, released: false, connections: 2 }
  ]
  for (const row of rows) {
    const s = await setup(t, row.options)
    const c = pausedClient(s.port, 16 * MiB, 'gone')
    await waitFor(() => s.proxy.listeners.length > 0 && activeConnections(s.proxy) === 1, 2000)
    const released = await waitFor(() => activeConnections(s.proxy) === 0, 1500)
    c.sock.destroy()
    await c.closed
    await sleep(50)
    const next = await slowGet(s.port, `/${64 * KiB}?id=next`, 0)
    t.same({ released, status: next.status, bytes: next.bytes, connections: s.connections() }, { released: row.released, status: 200, bytes: 64 * KiB, connections: row.connections }, row.name)
  }
})

t.test('memory stays bounded: 50 slow clients of 4 MiB each', async (t) => {
  const s = await setup(t)
  const n = 50
  const size = 4 * MiB
  global.gc?.()
  const before = process.memoryUsage.rss()
  let peak = before
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()) }, 20)
  const all = Array.from({ length: n }, (_, i) => slowGet(s.port, `/${size}?id=m${i}`, 2500))
  await waitFor(() => [...s.finished.keys()].filter((k) => k.startsWith('m')).length === n, 5000)
  const doneEarly = [...s.finished.keys()].filter((k) => k.startsWith('m')).length
  const got = await Promise.all(all)
  clearInterval(timer)
  const growth = peak - before
  t.equal(doneEarly, n, 'the upstream finished every answer while the clients read nothing')
  t.ok(got.every((g) => g.bytes === size && g.hash === bodyHash(size)), 'every client got its answer intact')
  t.ok(growth < 100 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB for ${n * size / MiB} MiB held for slow clients`)
  t.same(openUnder(s.tempPath), [], 'no temp file is left open')
})

t.test('sizes in nginx\'s syntax; anything else is a config error naming the key', async (t) => {
  const rows: Array<{ options: ProxyOptions, error: RegExp | null }> = [
    { options: { buffers: '128k', maxTempFileSize: '2g' }, error: null },
    { options: { buffers: 65536, maxTempFileSize: 0 }, error: null },
    { options: { buffers: '64kb' as never }, error: /buffers.*invalid size "64kb"/ },
    { options: { maxTempFileSize: '-1' as never }, error: /maxTempFileSize.*invalid size "-1"/ }
  ]
  for (const row of rows) {
    const config = { servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('http://127.0.0.1:9', row.options) } }] }
    if (row.error === null) t.ok((await startConfig(t, config)).listeners.length === 1, `${JSON.stringify(row.options)}: accepted`)
    else await t.rejects(startConfig(t, config), { message: row.error }, `${JSON.stringify(row.options)}: refused`)
  }
})
