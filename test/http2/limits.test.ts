/**
 * HTTP/2's limits through a real proxyctl: nginx's SETTINGS (128 concurrent streams, a header
 * list as large_client_header_buffers holds), and floods sent as raw frames over h2c: each
 * connection is closed with GOAWAY and a log line, and the process goes on serving. Graceful stop
 * sends GOAWAY to idle sessions.
 */
import http2 from 'node:http2'
import net from 'node:net'
import t from 'tap'
import { respond } from '@proxyctl/core'
import { freePort, startLogged } from '../helpers/failure.js'
import { CONTINUATION, END_HEADERS, END_STREAM, frame, GOAWAY, HEADERS, PREFACE, RST_STREAM } from '../helpers/h2-frames.js'
import { startConfig } from '../helpers/proxy.js'

/** HPACK: :method GET, :path /, :scheme http (static table), :authority localhost (literal). */
const BLOCK = Buffer.concat([Buffer.from([0x82, 0x84, 0x86, 0x41, 9]), Buffer.from('localhost')])

interface Attack { name: string, bytes: () => Buffer, goaway: number, limit: string }

const attacks: Attack[] = [
  {
    name: 'rapid reset: 2000 streams opened and cancelled at once',
    bytes: () => Buffer.concat(Array.from({ length: 2000 }, (_, i) => [frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, BLOCK), frame(RST_STREAM, 0, 1 + 2 * i, Buffer.from([0, 0, 0, 8]))]).flat()),
    goaway: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM,
    limit: 'resetsPerSecond'
  },
  {
    name: 'CONTINUATION flood: one header block in 10000 frames',
    bytes: () => {
      const field = Buffer.concat([Buffer.from([0x40, 3]), Buffer.from('x-a'), Buffer.from([1]), Buffer.from('b')])
      return Buffer.concat([frame(HEADERS, 0, 1, BLOCK), ...Array.from({ length: 10000 }, () => frame(CONTINUATION, 0, 1, field))])
    },
    goaway: http2.constants.NGHTTP2_INTERNAL_ERROR,
    limit: 'protocol'
  }
]

/** Sends the preface and `bytes`; resolves with the GOAWAY code received (-1: none) once the server closes (5 s at most). */
async function sendRaw (port: number, bytes: Buffer): Promise<{ goaway: number, closed: boolean }> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  let got = Buffer.alloc(0)
  socket.on('data', (d: Buffer) => { got = Buffer.concat([got, d]) })
  const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)))
  socket.write(Buffer.concat([PREFACE, bytes]))
  const done = await Promise.race([closed, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000))])
  socket.destroy()
  let goaway = -1
  for (let off = 0; off + 9 <= got.length; off += 9 + got.readUIntBE(off, 3)) {
    if (got[off + 3] === GOAWAY && off + 17 <= got.length) goaway = got.readUInt32BE(off + 13)
  }
  return { goaway, closed: done }
}

async function h2Get (port: number): Promise<number> {
  const session = http2.connect(`http://127.0.0.1:${port}`)
  try {
    return await new Promise<number>((resolve, reject) => {
      session.once('error', reject)
      const req = session.request({ ':path': '/' })
      req.on('response', (h) => { resolve(Number(h[':status'])) })
      req.on('error', reject)
      req.resume()
    })
  } finally { session.close() }
}

t.test('floods close the connection with GOAWAY, a log line, and the process serves on', async (t) => {
  const port = await freePort()
  const p = await startLogged(t, { servers: [{ listen: { address: `127.0.0.1:${port}`, http2: true }, locations: { '/': respond(200, 'ok\n') } }] })
  for (const a of attacks) {
    const before = p.lines.length
    t.same(await sendRaw(port, a.bytes()), { goaway: a.goaway, closed: true }, `${a.name}: GOAWAY ${a.goaway} and the connection closed`)
    const line = p.lines.slice(before).find((l) => l.code === 'PROXYCTL_H2_SESSION_ERROR')
    t.match(line, { level: 'info', client: '127.0.0.1', limit: a.limit }, `${a.name}: one info line with the code, the client and the limit`)
    t.equal(await h2Get(port), 200, `${a.name}: a new h2 connection is answered`)
  }
})

t.test("the server's SETTINGS are nginx's limits", async (t) => {
  const port = await freePort()
  await startConfig(t, { servers: [{ listen: { address: `127.0.0.1:${port}`, http2: true }, locations: { '/': respond(200, 'ok\n') } }] })
  const session = http2.connect(`http://127.0.0.1:${port}`)
  t.teardown(() => session.close())
  const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve))
  t.equal(settings.maxConcurrentStreams, 128, 'maxConcurrentStreams: 128 (http2_max_concurrent_streams)')
  t.equal(settings.maxHeaderListSize, 1024 + 4 * 8192, 'maxHeaderListSize: what the head buffers hold (1k + large_client_header_buffers 4 8k)')
})

t.test('a graceful stop sends GOAWAY to an idle h2 session and ends', async (t) => {
  const port = await freePort()
  const p = await startConfig(t, { servers: [{ listen: { address: `127.0.0.1:${port}`, http2: true }, locations: { '/': respond(200, 'ok\n') } }] })
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  await new Promise((resolve) => session.once('remoteSettings', resolve))
  const goaway = new Promise<number>((resolve) => session.once('goaway', (code) => resolve(code)))
  const started = Date.now()
  await p.close(10_000)
  t.equal(await goaway, 0, 'GOAWAY NO_ERROR')
  t.ok(Date.now() - started < 5000, 'closed without waiting for the grace period')
})
