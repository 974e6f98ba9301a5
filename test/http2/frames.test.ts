/**
 * The frames an HTTP/2 answer is made of, read raw off an h2c connection to a real proxyctl: an
 * answer without trailers ends with END_STREAM on its last DATA frame (or on HEADERS when it has
 * no body), as nginx sends it, not with one more empty DATA frame (Node's response waits for
 * trailers on every stream otherwise); an answer whose head announces trailers (`Trailer`, as
 * Fastify's `reply.trailer()` does) sends them as a last HEADERS frame.
 */
import http from 'node:http'
import net from 'node:net'
import t from 'tap'
import { defineHandler, respond } from '@proxyctl/core'
import { proxy } from '@proxyctl/plugins'
import { freePort } from '../helpers/failure.js'
import { DATA, END_HEADERS, END_STREAM, frame, HEADERS, PREFACE, RST_STREAM } from '../helpers/h2-frames.js'
import { startConfig } from '../helpers/proxy.js'
import { listenOn } from '../helpers/upstream.js'

const TYPES: Record<number, string> = { [DATA]: 'DATA', [HEADERS]: 'HEADERS', [RST_STREAM]: 'RST_STREAM' }

/** HPACK without the dynamic table or Huffman: a literal field ("never indexed", new name). */
const literal = (name: string, value: string): Buffer => Buffer.concat([Buffer.from([0x10, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)])

/**
 * One request on stream 1 of a fresh h2c connection; the frames stream 1's answer came in, as
 * `TYPE [length] [END_STREAM]` (a DATA frame's length is its body piece's).
 */
async function answerFrames (port: number, method: string, path: string): Promise<string[]> {
  const block = Buffer.concat([literal(':method', method), literal(':scheme', 'http'), literal(':path', path), literal(':authority', 'localhost')])
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write(Buffer.concat([PREFACE, frame(HEADERS, END_STREAM | END_HEADERS, 1, block)]))
  let got = Buffer.alloc(0)
  const frames: string[] = []
  try {
    return await new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no END_STREAM in 5 s: ${frames.join(', ')}`)), 5000)
      socket.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d])
        while (got.length >= 9 && got.length >= 9 + got.readUIntBE(0, 3)) {
          const length = got.readUIntBE(0, 3)
          const [type, flags] = [got[3] as number, got[4] as number]
          const stream = got.readUInt32BE(5) & 0x7fffffff
          got = got.subarray(9 + length)
          if (stream !== 1) continue
          frames.push([TYPES[type] ?? `type${type}`, type === DATA ? String(length) : '', (flags & END_STREAM) !== 0 ? 'END_STREAM' : ''].filter((s) => s !== '').join(' '))
          if ((flags & END_STREAM) !== 0 || type === RST_STREAM) { clearTimeout(timer); resolve(frames); return }
        }
      })
    })
  } finally { socket.destroy() }
}

/** Answers with a body and a trailer, announced in its head as RFC 9110 asks (Fastify's reply.trailer). */
const withTrailer = defineHandler('with a trailer', () => ({
  handle: (_request, reply) => {
    reply.header('content-type', 'text/plain')
    reply.trailer('x-checksum', async () => 'abc')
    return reply.send('body with a trailer\n')
  }
}))

t.test('an h2 answer ends on its last frame; trailers only when announced', async (t) => {
  const up = http.createServer((req, res) => {
    const body = `upstream ${req.url ?? ''}\n`
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  const upstream = await listenOn(up, { port: 0 })
  t.teardown(() => new Promise<void>((resolve) => { up.closeAllConnections(); up.close(() => resolve()) }))
  const port = await freePort()
  await startConfig(t, {
    servers: [{
      listen: { address: `127.0.0.1:${port}`, http2: true },
      locations: {
        '= /text': respond(200, 'hello\n'),
        '= /empty': respond(204),
        '/api/': proxy(`http://${upstream}`),
        '= /trailer': withTrailer
      }
    }]
  })
  const table: Array<[method: string, path: string, frames: string[], rule: string]> = [
    ['GET', '/text', ['HEADERS', 'DATA 6 END_STREAM'], 'a respond() text: HEADERS, then one DATA frame with END_STREAM'],
    ['GET', '/api/x', ['HEADERS', 'DATA 16 END_STREAM'], 'a proxied answer: the upstream body in a DATA frame with END_STREAM'],
    ['HEAD', '/api/x', ['HEADERS END_STREAM'], 'HEAD: END_STREAM on HEADERS'],
    ['GET', '/empty', ['HEADERS END_STREAM'], 'a 204: END_STREAM on HEADERS'],
    ['GET', '/nope', ['HEADERS', 'DATA 149 END_STREAM'], 'an error page: its body with END_STREAM'],
    ['GET', '/trailer', ['HEADERS', 'DATA 20', 'HEADERS END_STREAM'], 'trailers announced by Trailer: the body, then the trailers HEADERS frame with END_STREAM']
  ]
  for (const [method, path, frames, rule] of table) t.same(await answerFrames(port, method, path), frames, rule)
})
