/**
 * Memory under large transfers: proxyctl runs as its own process (the real CLI), and its RSS is
 * sampled from /proc/PID/status while 1 GiB goes through it each way, with the slow side
 * reading at a limited rate for a while (so backpressure must hold the data back upstream, or,
 * for the download, buffering must spill it to its temp file, instead of keeping it in memory),
 * then fast. Loopback only.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import t from 'tap'
import { configDir, startCli, targetOf, writeConfig } from '../helpers/proxy.js'
import { startUpstream } from '../helpers/upstream.js'

const GiB = 1024 * 1024 * 1024
const MiB = 1024 * 1024
const BLOCK = MiB
/** Allowed RSS growth over the warmed-up baseline. */
const MAX_GROWTH = 40 * MiB
/** Slow phase: this rate for this long, then as fast as possible. */
const SLOW_RATE = 16 * MiB
const SLOW_MS = 3000

const base = crypto.randomBytes(BLOCK)
/** Block `i` of a generated stream: random bytes stamped with the block number. */
function block (i: number): Buffer {
  const b = Buffer.allocUnsafe(BLOCK)
  base.copy(b)
  b.writeUInt32BE(i, 0)
  return b
}

function rssOf (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? 0 : Number(m[1]) * 1024
}

/** Samples a process's RSS every `ms` until stopped; keeps the peak. */
function sampler (pid: number, ms = 25): { stop: () => { peak: number, samples: number } } {
  let peak = 0
  let samples = 0
  const timer = setInterval(() => { try { peak = Math.max(peak, rssOf(pid)); samples++ } catch {} }, ms)
  return { stop: () => { clearInterval(timer); return { peak: Math.max(peak, rssOf(pid)), samples } } }
}

/** Writes `size` bytes of generated blocks to `out` with backpressure; resolves with their sha256. */
function writeGenerated (out: NodeJS.WritableStream & { once: (e: string, f: () => void) => unknown }, size: number, end: () => void): Promise<string> {
  return new Promise((resolve) => {
    const hash = crypto.createHash('sha256')
    let i = 0
    const blocks = Math.ceil(size / BLOCK)
    const pump = (): void => {
      while (i < blocks) {
        let b = block(i++)
        if (i === blocks && size % BLOCK !== 0) b = b.subarray(0, size % BLOCK)
        hash.update(b)
        if (!out.write(b)) { out.once('drain', pump); return }
      }
      end()
      resolve(hash.digest('hex'))
    }
    pump()
  })
}

/**
 * Reads a stream, at `rate` bytes/s for `slowMs`, then as fast as it comes (pausing the
 * stream between 50 ms windows). Resolves with the size and sha256.
 */
function readThrottled (stream: NodeJS.ReadableStream & { pause: () => unknown, resume: () => unknown }, rate: number, slowMs: number): Promise<{ bytes: number, hash: string, slowBytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256')
    const t0 = Date.now()
    let bytes = 0
    let slowBytes = 0
    let windowStart = t0
    let windowBytes = 0
    let resumeTimer: NodeJS.Timeout | undefined
    stream.on('data', (d: Buffer) => {
      bytes += d.length
      hash.update(d)
      const now = Date.now()
      if (now - t0 >= slowMs) return
      slowBytes += d.length
      if (now - windowStart >= 50) { windowStart = now; windowBytes = 0 }
      windowBytes += d.length
      if (windowBytes >= rate / 20) {
        stream.pause()
        resumeTimer = setTimeout(() => { windowStart = Date.now(); windowBytes = 0; stream.resume() }, Math.max(1, 50 - (now - windowStart)))
      }
    })
    stream.on('end', () => { clearTimeout(resumeTimer); resolve({ bytes, hash: hash.digest('hex'), slowBytes }) })
    stream.on('error', (e) => { clearTimeout(resumeTimer); reject(e) })
  })
}

const mb = (n: number): string => `${(n / MiB).toFixed(1)} MiB`

t.test('memory: 1 GiB each way through the CLI proxy, slow then fast, RSS stays within 40 MiB of baseline', { timeout: 90_000 }, async (t) => {
  let expectedDown = ''
  const upGot: Array<{ bytes: number, hash: string, slowBytes: number }> = []
  const up = await startUpstream(t, 'big', { port: 0 }, (req, res) => {
    const u = new URL(req.url ?? '/', 'http://x')
    const size = Number(u.searchParams.get('size') ?? 0)
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) })
      void writeGenerated(res, size, () => res.end()).then((h) => { expectedDown = h })
      return
    }
    // Uploads: read slowly for `slow` ms (the proxy must stop reading the client), then fast.
    const slow = Number(u.searchParams.get('slow') ?? 0)
    void readThrottled(req, SLOW_RATE, slow).then((got) => {
      upGot.push(got)
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes: got.bytes }))
    })
  })
  const dir = configDir(t)
  const file = writeConfig(dir, [
    "import { defineConfig, proxy } from 'proxyctl'",
    'export default defineConfig({',
    `  servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('http://${up.address}', { readTimeout: 30000, sendTimeout: 30000 }) } }]`,
    '})',
    ''
  ].join('\n'))
  const cli = await startCli(t, ['-c', file])
  const pid = cli.child.pid as number
  const port = targetOf(cli.urls[0] as string).port as number
  t.teardown(() => cli.stop())
  t.comment(`proxy RSS after start: ${mb(rssOf(pid))}`)

  const download = async (size: number, slowMs: number): Promise<{ bytes: number, hash: string, slowBytes: number }> =>
    await new Promise((resolve, reject) => {
      const req = http.get({ port, path: `/big?size=${size}`, agent: false }, (res) => {
        readThrottled(res, SLOW_RATE, slowMs).then(resolve, reject)
      })
      req.on('error', reject)
    })
  const upload = async (size: number, slowMs: number): Promise<{ status: number, hash: string }> =>
    await new Promise((resolve, reject) => {
      let hash = ''
      const req = http.request({ port, method: 'PUT', path: `/big?slow=${slowMs}`, agent: false, headers: { 'content-length': String(size) } }, (res) => {
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode ?? 0, hash }))
      })
      req.on('error', reject)
      void writeGenerated(req, size, () => req.end()).then((h) => { hash = h })
    })

  // Warm-up: the same paths with smaller bodies, so JIT, pools and buffers reach their steady size.
  for (let i = 0; i < 3; i++) {
    await download(64 * MiB, 300)
    await upload(64 * MiB, 300)
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
  const baselineSamples: number[] = []
  for (let i = 0; i < 5; i++) { baselineSamples.push(rssOf(pid)); await new Promise((resolve) => setTimeout(resolve, 50)) }
  const baseline = Math.max(...baselineSamples)
  t.comment(`proxy RSS baseline after warm-up: ${mb(baseline)}`)

  await t.test('1 GiB download to a client reading 16 MiB/s for 3 s, then fast', async (t) => {
    const s = sampler(pid)
    const t0 = Date.now()
    const got = await download(GiB, SLOW_MS)
    const { peak, samples } = s.stop()
    const secs = (Date.now() - t0) / 1000
    t.comment(`download: ${secs.toFixed(1)} s, ${samples} samples, RSS peak ${mb(peak)} (baseline ${mb(baseline)}, growth ${mb(peak - baseline)})`)
    t.equal(got.bytes, GiB, 'every byte arrived')
    t.equal(got.hash, expectedDown, 'sha256 matches what the upstream sent')
    t.ok(got.slowBytes <= SLOW_RATE * (SLOW_MS / 1000) * 1.5 + 8 * MiB, `slow phase really was slow (${mb(got.slowBytes)})`)
    t.ok(peak - baseline <= MAX_GROWTH, `RSS growth ${mb(peak - baseline)} <= ${mb(MAX_GROWTH)}`)
  })

  await t.test('1 GiB upload to an upstream reading 16 MiB/s for 3 s, then fast', async (t) => {
    const s = sampler(pid)
    const t0 = Date.now()
    upGot.length = 0
    const res = await upload(GiB, SLOW_MS)
    const { peak, samples } = s.stop()
    const secs = (Date.now() - t0) / 1000
    t.comment(`upload: ${secs.toFixed(1)} s, ${samples} samples, RSS peak ${mb(peak)} (baseline ${mb(baseline)}, growth ${mb(peak - baseline)})`)
    t.equal(res.status, 200)
    t.equal(upGot[0]?.bytes, GiB, 'every byte arrived')
    t.equal(upGot[0]?.hash, res.hash, 'sha256 matches what the client sent')
    t.ok(peak - baseline <= MAX_GROWTH, `RSS growth ${mb(peak - baseline)} <= ${mb(MAX_GROWTH)}`)
  })
})
