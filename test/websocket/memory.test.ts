/**
 * Backpressure through a tunnel: proxyctl runs as its own process (the real CLI) and its RSS is
 * read from /proc while 200 MiB are pushed at a side that has stopped reading, in each
 * direction. The proxy must hold the data back (the pusher stalls) instead of buffering it, and
 * deliver all of it once the reader resumes.
 */
import fs from 'node:fs'
import t from 'tap'
import { WebSocket } from 'ws'
import { configDir, startCli, writeConfig } from '../helpers/proxy.js'
import { openWs, startWsUpstream, wsUrl } from '../helpers/ws.js'

t.setTimeout(120_000)

const MiB = 1024 * 1024
const TOTAL = 200 * MiB
const CHUNK = MiB
/**
 * Allowed RSS growth of the proxy over its warmed-up baseline: while the reader is stopped and
 * 200 MiB wait to be pushed at it (buffering them would show as ~190 MiB), and over the whole
 * transfer, where garbage not yet collected at 200+ MiB/s adds a few MiB more.
 */
const MAX_STALLED_GROWTH = 8 * MiB
const MAX_GROWTH = 24 * MiB

function rssOf (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? 0 : Number(m[1]) * 1024
}

function sampler (pid: number): { stop: () => number } {
  let peak = 0
  const timer = setInterval(() => { try { peak = Math.max(peak, rssOf(pid)) } catch {} }, 20)
  return { stop: () => { clearInterval(timer); return Math.max(peak, rssOf(pid)) } }
}

/**
 * Sends TOTAL bytes as 1 MiB binary messages, keeping at most 4 MiB queued in the sender, as a
 * well-behaved sender does. Resolves when all were handed to the socket; `sent()` tells progress.
 */
function push (ws: WebSocket): { sent: () => number, done: Promise<void> } {
  let sent = 0
  const chunk = Buffer.alloc(CHUNK, 0x61)
  const done = new Promise<void>((resolve) => {
    const pump = (): void => {
      while (sent < TOTAL && ws.bufferedAmount < 4 * MiB) { ws.send(chunk); sent += CHUNK }
      if (sent >= TOTAL) { resolve(); return }
      setTimeout(pump, 5)
    }
    pump()
  })
  return { sent: () => sent, done }
}

/** Counts the bytes a WebSocket receives; resolves when `total` arrived. */
function receive (ws: WebSocket, total: number): { got: () => number, done: Promise<void> } {
  let got = 0
  const done = new Promise<void>((resolve) => {
    ws.on('message', (d: Buffer) => { got += d.length; if (got >= total) resolve() })
  })
  return { got: () => got, done }
}

t.test('a reader that stops does not make the proxy buffer: 200 MiB each way', async (t) => {
  const pushers: Array<(ws: WebSocket) => void> = []
  const readers: WebSocket[] = []
  const up = await startWsUpstream(t, { port: 0 }, {
    perMessageDeflate: false,
    onConnection (ws) { readers.push(ws); const next = pushers.shift(); next?.(ws) }
  })
  const dir = configDir(t)
  const file = writeConfig(dir, `import { defineConfig, websocket } from 'proxyctl'
export default defineConfig({
  servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket('http://${up.address}') } }]
})
`)
  const run = await startCli(t, ['--config', file])
  const pid = run.child.pid as number
  const url = wsUrl(run.urls[0] as string, '/ws/')

  // Warm-up: 32 MiB each way with everybody reading, then the baseline.
  {
    const serverSide = new Promise<WebSocket>((resolve) => pushers.push(resolve))
    const ws = await openWs(t, url, [], { perMessageDeflate: false })
    const server = await serverSide
    const a = receive(ws, 32 * MiB)
    const b = receive(server, 32 * MiB)
    for (let i = 0; i < 32; i++) { server.send(Buffer.alloc(MiB)); ws.send(Buffer.alloc(MiB)) }
    await Promise.all([a.done, b.done])
    ws.close()
  }
  await new Promise((r) => setTimeout(r, 300))
  const baseline = rssOf(pid)

  for (const direction of ['upstream → client', 'client → upstream'] as const) {
    const serverSide = new Promise<WebSocket>((resolve) => pushers.push(resolve))
    const client = await openWs(t, url, [], { perMessageDeflate: false })
    const server = await serverSide
    await new Promise((r) => setTimeout(r, 500))
    const before = rssOf(pid)
    const [sender, reader] = direction === 'upstream → client' ? [server, client] : [client, server]
    const rss = sampler(pid)
    reader.pause() // stops reading its socket
    const p = push(sender)
    const r = receive(reader, TOTAL)
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const stalledAt = p.sent()
    const stalledRss = rss.stop()
    const rssAll = sampler(pid)
    t.ok(stalledAt < 64 * MiB, `${direction}: with the reader stopped the sender stalls at ${(stalledAt / MiB).toFixed(0)} MiB of 200 MiB`)
    reader.resume()
    await Promise.all([p.done, r.done])
    const peak = Math.max(stalledRss, rssAll.stop())
    t.equal(r.got(), TOTAL, `${direction}: all 200 MiB arrive once the reader resumes`)
    const mib = (n: number): string => (n / MiB).toFixed(1)
    t.ok(stalledRss - before < MAX_STALLED_GROWTH,
      `${direction}: proxy RSS ${mib(before)} MiB before, peak ${mib(stalledRss)} MiB while the reader is stopped (growth ${mib(stalledRss - before)} MiB < ${MAX_STALLED_GROWTH / MiB} MiB)`)
    t.ok(peak - baseline < MAX_GROWTH,
      `${direction}: baseline ${mib(baseline)} MiB, peak ${mib(peak)} MiB over the whole 200 MiB (growth ${mib(peak - baseline)} MiB < ${MAX_GROWTH / MiB} MiB)`)
    client.close()
  }
  t.equal(await run.stop('SIGTERM'), 0)
})
