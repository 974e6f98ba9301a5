// Opens COUNT keep-alive connections to HOST:PORT, sends one `GET PATH` on each, reads the answer,
// then leaves them idle. Prints one JSON line when they are all open. Then, on stdin:
// "check" prints how many are still open; "close" (or stdin's end, SIGTERM) closes all and exits.
// Needs a file-descriptor limit above COUNT: run.mjs starts it under `ulimit -n`.
//
// usage: node idle-conns.mjs HOST PORT COUNT PATH
import net from 'node:net'
import readline from 'node:readline'

const [host, portArg, countArg, path = '/health'] = process.argv.slice(2)
const port = Number(portArg)
const count = Number(countArg)
const CONCURRENCY = 200
const sockets = new Set()
let failed = 0
let firstError

function openOne () {
  return new Promise((resolve) => {
    const s = net.connect({ host, port })
    let buf = ''
    let done = false
    const finish = (ok, err) => {
      if (done) return
      done = true
      if (ok) sockets.add(s)
      else { failed++; firstError ??= err?.message ?? 'closed'; s.destroy() }
      resolve()
    }
    s.setEncoding('latin1')
    s.setTimeout(10_000, () => finish(false, new Error('timeout')))
    s.on('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`))
    s.on('data', (d) => {
      if (done) return
      buf += d
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const m = /content-length:\s*(\d+)/i.exec(buf.slice(0, end))
      if (m === null || buf.length >= end + 4 + Number(m[1])) { s.setTimeout(0); finish(/^HTTP\/1\.1 200/.test(buf)) }
    })
    s.on('error', (err) => finish(false, err))
    s.on('close', () => { sockets.delete(s); finish(false, new Error('closed by server')) })
  })
}

let next = 0
async function worker () { while (next < count) { next++; await openOne() } }
const t0 = Date.now()
await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, worker))
process.stdout.write(JSON.stringify({ open: sockets.size, failed, firstError, ms: Date.now() - t0 }) + '\n')

const closeAll = () => { for (const s of sockets) s.destroy(); process.exit(0) }
process.on('SIGTERM', closeAll)
const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  if (line.trim() === 'check') process.stdout.write(JSON.stringify({ open: sockets.size }) + '\n')
  else if (line.trim() === 'close') closeAll()
})
rl.on('close', closeAll)
