// Slow readers: an upstream that answers every request with SIZE bytes (Content-Length, 64 KiB
// writes with backpressure) and records when each answer was completely written and how long
// it held the upstream (from the request's arrival to the answer's last byte written), and COUNT
// clients that each GET one answer through a proxy and read it at RATE bytes/s, after reading
// nothing for PAUSE ms (default 0).
// Prints `{"upstream":PORT}` once the upstream listens; then, on stdin, "go PORT [PATH]" runs the
// clients against the proxy on 127.0.0.1:PORT and prints one JSON line: when the upstream had
// completed every answer and when the clients had read every byte (ms since the first request),
// the longest and the 99th percentile of the per-answer hold (ms), answers complete and intact,
// failures. "close" (or stdin's end, SIGTERM) exits.
//
// usage: node slow-readers.mjs COUNT SIZE RATE [PAUSE]
import http from 'node:http'
import net from 'node:net'
import readline from 'node:readline'

const [countArg, sizeArg, rateArg, pauseArg = '0'] = process.argv.slice(2)
const COUNT = Number(countArg)
const SIZE = Number(sizeArg)
const RATE = Number(rateArg)
const PAUSE = Number(pauseArg)
const TICK = 50 // ms between rate windows
const CONNECT_BATCH = 200

const block = Buffer.alloc(65536, 0x62)
let finished = []
let held = []
let arrivals = []
const upstream = http.createServer((req, res) => {
  const arrived = performance.now()
  arrivals.push(arrived)
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) })
  let sent = 0
  const pump = () => {
    while (sent < SIZE) {
      const n = Math.min(block.length, SIZE - sent)
      sent += n
      if (!res.write(n === block.length ? block : block.subarray(0, n))) { res.once('drain', pump); return }
    }
    res.end(() => { const now = performance.now(); finished.push(now); held.push(now - arrived) })
  }
  pump()
})
upstream.keepAliveTimeout = 120_000
upstream.maxConnections = 100_000
await new Promise((resolve) => upstream.listen(0, '127.0.0.1', 4096, resolve))
process.stdout.write(JSON.stringify({ upstream: upstream.address().port }) + '\n')

/** One client: reads the answer at RATE (paused between windows); resolves with what it got. */
function client (port, path, clients, readFrom) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port })
    const c = { s, allowance: 0, paused: true, readFrom, head: '', body: 0, length: -1, status: 0 }
    s.pause()
    clients.add(c)
    let done = false
    const finish = (error) => {
      if (done) return
      done = true
      clients.delete(c)
      s.destroy()
      resolve({ ok: error === undefined && c.status === 200 && c.body === c.length, error, at: performance.now() })
    }
    s.on('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`))
    s.on('data', (d) => {
      c.allowance -= d.length
      if (c.length < 0) {
        c.head += d.toString('latin1')
        const end = c.head.indexOf('\r\n\r\n')
        if (end < 0) return
        c.status = Number(c.head.slice(9, 12))
        c.length = Number(/content-length:\s*(\d+)/i.exec(c.head.slice(0, end))?.[1] ?? -1)
        c.body = c.head.length - end - 4
      } else c.body += d.length
      if (c.body >= c.length && c.length >= 0) { finish(); return }
      if (c.allowance <= 0) { c.paused = true; s.pause() }
    })
    s.on('error', (err) => finish(err.code ?? err.message))
    s.on('close', () => finish(c.body < c.length ? 'closed early' : undefined))
  })
}

async function run (port, path) {
  finished = []
  held = []
  arrivals = []
  const clients = new Set()
  const timer = setInterval(() => {
    const now = performance.now()
    for (const c of clients) {
      if (now < c.readFrom) continue
      c.allowance = Math.min(c.allowance + RATE * TICK / 1000, RATE * TICK / 1000)
      if (c.paused && c.allowance > 0) { c.paused = false; c.s.resume() }
    }
  }, TICK)
  const t0 = performance.now()
  const results = []
  for (let i = 0; i < COUNT; i += CONNECT_BATCH) {
    const batch = []
    for (let j = i; j < Math.min(COUNT, i + CONNECT_BATCH); j++) batch.push(client(port, path, clients, t0 + PAUSE))
    results.push(...batch)
    await new Promise((resolve) => setImmediate(resolve))
  }
  const got = await Promise.all(results)
  clearInterval(timer)
  const failures = got.filter((g) => !g.ok)
  return {
    count: COUNT,
    ok: got.length - failures.length,
    failed: failures.length,
    firstError: failures[0]?.error,
    upstreamDone: finished.length,
    upstreamDoneMs: finished.length === 0 ? null : Math.max(...finished) - t0,
    lastArrivalMs: arrivals.length === 0 ? null : Math.max(...arrivals) - t0,
    heldMaxMs: held.length === 0 ? null : Math.max(...held),
    heldP99Ms: held.length === 0 ? null : held.sort((a, b) => a - b)[Math.min(held.length - 1, Math.floor(held.length * 0.99))],
    clientsDoneMs: Math.max(...got.map((g) => g.at)) - t0
  }
}

const exit = () => { upstream.closeAllConnections(); upstream.close(); process.exit(0) }
process.on('SIGTERM', exit)
const rl = readline.createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  const [cmd, port, path = '/tcp/big'] = line.trim().split(/\s+/)
  if (cmd === 'go') process.stdout.write(JSON.stringify(await run(Number(port), path)) + '\n')
  else if (cmd === 'close') exit()
})
rl.on('close', exit)
