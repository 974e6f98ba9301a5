// WebSocket echo load: CONNS tunnels to URL, each sends a SIZE-byte binary message, waits for the
// echo, sends the next, for SECONDS. Prints one JSON line: round trips/s, MB/s each way, p50/p99
// round-trip latency (ms), errors.
//
// usage: node ws-load.mjs URL CONNS SECONDS SIZE
import WebSocket from 'ws'

const [url, connsArg, secondsArg, sizeArg] = process.argv.slice(2)
const conns = Number(connsArg)
const seconds = Number(secondsArg)
const size = Number(sizeArg)
const payload = Buffer.alloc(size, 0x61)
const samples = []
let trips = 0
let errors = 0
let measuring = false
let stopping = false

const sockets = await Promise.all(Array.from({ length: conns }, () => new Promise((resolve) => {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  ws.once('open', () => resolve(ws))
  ws.once('error', () => { errors++; resolve(null) })
})))
const open = sockets.filter((s) => s !== null)

for (const ws of open) {
  let sent = 0
  ws.on('message', () => {
    if (measuring) { trips++; if (samples.length < 2_000_000) samples.push(performance.now() - sent) }
    if (stopping) return
    sent = performance.now()
    ws.send(payload)
  })
  ws.on('error', () => { errors++ })
  ws.on('close', () => { if (!stopping) errors++ })
  sent = performance.now()
  ws.send(payload)
}
// one second of warm-up, then measure
await new Promise((r) => setTimeout(r, 1000))
measuring = true
const t0 = performance.now()
await new Promise((r) => setTimeout(r, seconds * 1000))
measuring = false
const elapsed = (performance.now() - t0) / 1000
stopping = true
for (const ws of open) ws.terminate()
samples.sort((a, b) => a - b)
const q = (p) => samples.length === 0 ? null : samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]
process.stdout.write(JSON.stringify({
  open: open.length, tripsPerSec: trips / elapsed, mbPerSecEachWay: trips * size / elapsed / 1048576, p50: q(0.5), p99: q(0.99), errors
}) + '\n')
process.exit(0)
