// The HTTP/2 floor: Node's http2 core API (streams, no compatibility request/response) over TLS
// in front of one undici Pool, nothing else. What a Node.js h2 proxy cannot go below with Node's
// own HTTP/2; ANSWER=1 answers 101 bytes itself (no upstream: Node's h2 and TLS alone).
//
// env: PORT, UPSTREAM_TCP (host:port), CERT, KEY, ANSWER
import fs from 'node:fs'
import http2 from 'node:http2'
import { Pool } from 'undici'

const { PORT, UPSTREAM_TCP, CERT, KEY, ANSWER, COMPAT } = process.env
const pool = new Pool(`http://${UPSTREAM_TCP}`, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 })
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect'])
const BODY = Buffer.alloc(101, 'x')

const server = http2.createSecureServer({ cert: fs.readFileSync(CERT), key: fs.readFileSync(KEY), allowHTTP1: false, settings: { maxConcurrentStreams: 128 } })
server.on('stream', (stream, headers) => {
  const path = headers[':path']
  if (path === '/health' || ANSWER === '1') { stream.respond({ ':status': 200 }); stream.end(path === '/health' ? 'ok\n' : BODY); return }
  const out = { host: headers[':authority'] }
  for (const name in headers) if (name.charCodeAt(0) !== 0x3a && !HOP.has(name)) out[name] = headers[name]
  pool.request({ method: headers[':method'], path, headers: out, body: stream.endAfterHeaders ? null : stream }).then(({ statusCode, headers: h, body }) => {
    for (const name of HOP) delete h[name]
    h[':status'] = statusCode
    stream.respond(h)
    body.pipe(stream)
  }, () => { if (!stream.headersSent) stream.respond({ ':status': 502 }); stream.end() })
})
// COMPAT=1: the same through Node's compatibility request and response (what proxyctl builds on).
if (COMPAT === '1') {
  server.removeAllListeners('stream')
  server.on('request', (req, res) => {
    if (req.url === '/health' || ANSWER === '1') { res.end(req.url === '/health' ? 'ok\n' : BODY); return }
    const out = { host: req.headers[':authority'] }
    for (const name in req.headers) if (name.charCodeAt(0) !== 0x3a && !HOP.has(name)) out[name] = req.headers[name]
    pool.request({ method: req.method, path: req.url, headers: out, body: req.stream.endAfterHeaders ? null : req }).then(({ statusCode, headers: h, body }) => {
      for (const name of HOP) delete h[name]
      res.writeHead(statusCode, h)
      body.pipe(res)
    }, () => { if (!res.headersSent) res.statusCode = 502; res.end() })
  })
}
server.on('sessionError', () => {})
// bench/run.mjs's readiness probe speaks HTTP/1.1.
server.on('unknownProtocol', (socket) => { socket.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n') })
server.listen(Number(PORT), '127.0.0.1')
const stop = () => { server.close(); pool.close().finally(() => process.exit(0)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
