// New TLS connections per second: CONCURRENCY clients, each in a loop for SECONDS: a full TLS
// handshake (no session resumed), one `GET PATH` with `Connection: close`, the answer read to the
// close. Prints one JSON line: { connections, failed, seconds, perSecond }.
//   node bench/load/tls-handshakes.mjs HOST PORT PATH CONCURRENCY SECONDS
import tls from 'node:tls'

const [host = '127.0.0.1', port = '8443', path = '/', concurrency = '50', seconds = '10'] = process.argv.slice(2)
const end = Date.now() + Number(seconds) * 1000
let done = 0
let failed = 0

function once () {
  return new Promise((resolve) => {
    const sock = tls.connect({ host, port: Number(port), servername: 'localhost', rejectUnauthorized: false })
    let ok = false
    sock.once('secureConnect', () => { sock.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`) })
    sock.on('data', (d) => { if (!ok && d.toString('latin1', 0, 12) === 'HTTP/1.1 200') ok = true })
    sock.on('error', () => {})
    sock.on('close', () => { if (ok) done++; else failed++; resolve() })
  })
}

async function client () { while (Date.now() < end) await once() }
const t0 = Date.now()
await Promise.all(Array.from({ length: Number(concurrency) }, client))
const s = (Date.now() - t0) / 1000
process.stdout.write(JSON.stringify({ connections: done, failed, seconds: s, perSecond: done / s }) + '\n')
