/**
 * Bodies through a real proxyctl, both ways: Content-Length and chunked framing, HEAD, empty
 * bodies, `Expect: 100-continue`, large transfers compared by hash, and upstream trailers.
 */
import crypto from 'node:crypto'
import http from 'node:http'
import t from 'tap'
import { proxy } from '@proxyctl/plugins'
import { startConfig, urlOf, targetOf } from '../helpers/proxy.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'
import type { Teardown } from '../helpers/lifecycle.js'
import { inTurn, rawConnection } from '../helpers/raw-http.js'

const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex')

/** What the upstream saw of a request: headers and the body's size and hash. */
interface Seen { method: string, headers: http.IncomingHttpHeaders, bytes: number, hash: string }

/**
 * An upstream whose answer a test sets per path, recording what it got. `/echo-hash` answers
 * with the request body's length and sha256.
 */
async function upstreamWith (t: Teardown, routes: Record<string, (req: http.IncomingMessage, res: http.ServerResponse) => void>): Promise<Upstream & { got: Seen[] }> {
  const got: Seen[] = []
  const up = await startUpstream(t, 'stream', { port: 0 }, (req, res) => {
    const hash = crypto.createHash('sha256')
    let bytes = 0
    const route = routes[(req.url ?? '/').split('?')[0] as string]
    if (route !== undefined && req.headers['x-answer-early'] !== undefined) { route(req, res); return }
    req.on('data', (d: Buffer) => { bytes += d.length; hash.update(d) })
    req.on('end', () => {
      const seen: Seen = { method: req.method ?? '', headers: req.headers, bytes, hash: hash.digest('hex') }
      got.push(seen)
      if (route !== undefined) route(req, res)
      else {
        const json = JSON.stringify({ bytes: seen.bytes, hash: seen.hash })
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(json)) }).end(json)
      }
    })
  })
  return Object.assign(up, { got })
}

/** `/` buffers request bodies (the default), `/stream/` streams them (requestBuffering false); neither limits their size. */
async function startProxyTo (t: Teardown, up: Upstream): Promise<{ port: number }> {
  const p = await startConfig(t, {
    servers: [{
      listen: '127.0.0.1:0',
      clientMaxBodySize: 0,
      locations: { '/': proxy(`http://${up.address}`), '/stream/': proxy(`http://${up.address}`, { requestBuffering: false }) }
    }]
  })
  return { port: targetOf(urlOf(p)).port as number }
}

interface Got { status: number, headers: http.IncomingHttpHeaders, rawHeaders: string[], bytes: number, hash: string, trailers: NodeJS.Dict<string> }

/** A request through node:http; `body` is written in `pieces` writes (chunked unless a content-length header is given). */
function send (port: number, opts: { method?: string, path?: string, headers?: Record<string, string>, body?: Buffer, pieces?: number }): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request({ port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: opts.headers ?? {}, agent: false }, (res) => {
      const hash = crypto.createHash('sha256')
      let bytes = 0
      res.on('data', (d: Buffer) => { bytes += d.length; hash.update(d) })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, bytes, hash: hash.digest('hex'), trailers: res.trailers }))
      res.on('error', reject)
    })
    req.on('error', reject)
    const body = opts.body
    if (body === undefined) { req.end(); return }
    const pieces = opts.pieces ?? 1
    const size = Math.ceil(body.length / pieces)
    let off = 0
    const pump = (): void => {
      while (off < body.length) {
        const piece = body.subarray(off, off + size)
        off += piece.length
        if (!req.write(piece)) { req.once('drain', pump); return }
      }
      req.end()
    }
    pump()
  })
}

const small = crypto.randomBytes(100_000)
const large = crypto.randomBytes(64 * 1024 * 1024)

// ---------------------------------------------------------------------------------------------
// framing, both directions
// ---------------------------------------------------------------------------------------------

interface DownCase { rule: string, body: Buffer, framing: 'content-length' | 'chunked' }
const downCases: DownCase[] = [
  { rule: 'a Content-Length response reaches the client with the same Content-Length', body: small, framing: 'content-length' },
  { rule: 'a chunked response reaches the client chunked', body: small, framing: 'chunked' },
  { rule: 'a 64 MiB Content-Length download arrives intact (sha256)', body: large, framing: 'content-length' },
  { rule: 'a 64 MiB chunked download arrives intact (sha256)', body: large, framing: 'chunked' }
]

t.test('download framing', async (t) => {
  const up = await upstreamWith(t, Object.fromEntries(downCases.map((c, i) => [`/down${i}`, (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, c.framing === 'content-length' ? { 'content-length': String(c.body.length) } : {})
    // Written in 1 MiB pieces, with backpressure, so a chunked one really is many chunks.
    let off = 0
    const pump = (): void => {
      while (off < c.body.length) {
        const piece = c.body.subarray(off, off + 1024 * 1024)
        off += piece.length
        if (!res.write(piece)) { res.once('drain', pump); return }
      }
      res.end()
    }
    pump()
  }])))
  const { port } = await startProxyTo(t, up)
  for (const [i, c] of downCases.entries()) {
    const got = await send(port, { path: `/down${i}` })
    t.equal(got.status, 200, c.rule)
    t.equal(got.bytes, c.body.length, `${c.rule}: size`)
    t.equal(got.hash, sha256(c.body), `${c.rule}: sha256`)
    if (c.framing === 'content-length') {
      t.equal(got.headers['content-length'], String(c.body.length), `${c.rule}: content-length kept`)
      t.equal(got.headers['transfer-encoding'], undefined)
    } else {
      t.equal(got.headers['transfer-encoding'], 'chunked', `${c.rule}: chunked`)
      t.equal(got.headers['content-length'], undefined)
    }
  }
})

interface UpCase { rule: string, path: string, body: Buffer, framing: 'content-length' | 'chunked', pieces: number, upstreamGets: 'content-length' | 'chunked' }
const upCases: UpCase[] = [
  { rule: 'a Content-Length upload reaches the upstream with the same Content-Length', path: '/up', body: small, framing: 'content-length', pieces: 7, upstreamGets: 'content-length' },
  { rule: 'a chunked upload reaches the upstream with Content-Length (buffered, as nginx with proxy_request_buffering on)', path: '/up', body: small, framing: 'chunked', pieces: 7, upstreamGets: 'content-length' },
  { rule: 'a 64 MiB Content-Length upload arrives intact (sha256), buffered through a temp file', path: '/up', body: large, framing: 'content-length', pieces: 64, upstreamGets: 'content-length' },
  { rule: 'a 64 MiB chunked upload arrives intact (sha256), buffered through a temp file', path: '/up', body: large, framing: 'chunked', pieces: 64, upstreamGets: 'content-length' },
  { rule: 'streamed: a Content-Length upload reaches the upstream with the same Content-Length', path: '/stream/up', body: small, framing: 'content-length', pieces: 7, upstreamGets: 'content-length' },
  { rule: 'streamed: a chunked upload reaches the upstream chunked (as nginx with proxy_request_buffering off)', path: '/stream/up', body: small, framing: 'chunked', pieces: 7, upstreamGets: 'chunked' },
  { rule: 'streamed: a 64 MiB Content-Length upload arrives intact (sha256)', path: '/stream/up', body: large, framing: 'content-length', pieces: 64, upstreamGets: 'content-length' },
  { rule: 'streamed: a 64 MiB chunked upload arrives intact (sha256)', path: '/stream/up', body: large, framing: 'chunked', pieces: 64, upstreamGets: 'chunked' }
]

t.test('upload framing', async (t) => {
  const up = await upstreamWith(t, {})
  const { port } = await startProxyTo(t, up)
  for (const c of upCases) {
    up.got.length = 0
    const got = await send(port, {
      method: 'PUT',
      path: c.path,
      headers: c.framing === 'content-length' ? { 'content-length': String(c.body.length) } : { 'transfer-encoding': 'chunked' },
      body: c.body,
      pieces: c.pieces
    })
    t.equal(got.status, 200, c.rule)
    const seen = up.got[0]
    t.equal(seen?.bytes, c.body.length, `${c.rule}: size`)
    t.equal(seen?.hash, sha256(c.body), `${c.rule}: sha256`)
    if (c.upstreamGets === 'content-length') {
      t.equal(seen?.headers['content-length'], String(c.body.length), `${c.rule}: content-length`)
      t.equal(seen?.headers['transfer-encoding'], undefined)
    } else {
      t.equal(seen?.headers['transfer-encoding'], 'chunked', `${c.rule}: chunked`)
      t.equal(seen?.headers['content-length'], undefined)
    }
  }
})

// ---------------------------------------------------------------------------------------------
// HEAD and empty bodies
// ---------------------------------------------------------------------------------------------

t.test('HEAD: the upstream\'s Content-Length is passed on, no body is sent, the connection stays usable', async (t) => {
  const up = await upstreamWith(t, {
    '/file': (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '12345' })
      res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(12345))
    },
    '/chunky': (_req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end() }
  })
  const { port } = await startProxyTo(t, up)
  const [head, chunky, get] = await inTurn(t, { port }, [
    'HEAD /file HTTP/1.1\r\nHost: a\r\n\r\n',
    'HEAD /chunky HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET /file HTTP/1.1\r\nHost: a\r\n\r\n'
  ])
  t.match(head, /^HTTP\/1\.1 200 OK\r\n/)
  t.match(head, /\r\ncontent-length: 12345\r\n/i, 'HEAD keeps the Content-Length of the upstream')
  t.ok(head?.endsWith('\r\n\r\n'), 'and no body follows')
  t.equal(up.got[0]?.method, 'HEAD', 'the upstream got a HEAD')
  t.match(chunky, /^HTTP\/1\.1 200 OK\r\n/, 'HEAD of a bodiless answer')
  t.ok(chunky?.endsWith('\r\n\r\n'), 'no body, not even a last chunk')
  t.match(get, /^HTTP\/1\.1 200 OK\r\n/, 'the next request on the connection works')
  t.ok(get?.endsWith('x'.repeat(12345)))
})

interface EmptyCase { rule: string, path: string, answer: (res: http.ServerResponse) => void, status: number, expect: Record<string, string | undefined> }
const emptyCases: EmptyCase[] = [
  { rule: '204 has no body, no Content-Length, no Transfer-Encoding', path: '/204', answer: (res) => res.writeHead(204).end(), status: 204, expect: { 'content-length': undefined, 'transfer-encoding': undefined } },
  { rule: '304 keeps its validators and has no body', path: '/304', answer: (res) => res.writeHead(304, { etag: '"v1"' }).end(), status: 304, expect: { etag: '"v1"', 'transfer-encoding': undefined } },
  { rule: '200 with Content-Length: 0 is passed as Content-Length: 0', path: '/zero', answer: (res) => res.writeHead(200, { 'content-length': '0' }).end(), status: 200, expect: { 'content-length': '0', 'transfer-encoding': undefined } },
  { rule: '200 with an empty chunked body reaches the client as an empty chunked body', path: '/empty-chunked', answer: (res) => { res.writeHead(200, { 'transfer-encoding': 'chunked' }); res.end() }, status: 200, expect: { 'transfer-encoding': 'chunked', 'content-length': undefined } }
]

t.test('empty response bodies', async (t) => {
  const up = await upstreamWith(t, Object.fromEntries(emptyCases.map((c) => [c.path, (_req: http.IncomingMessage, res: http.ServerResponse) => c.answer(res)])))
  const { port } = await startProxyTo(t, up)
  const requests = emptyCases.map((c) => `GET ${c.path} HTTP/1.1\r\nHost: a\r\n\r\n`)
  const raws = await inTurn(t, { port }, requests)
  for (const [i, c] of emptyCases.entries()) {
    const raw = raws[i] ?? ''
    const [head = '', body] = raw.split('\r\n\r\n')
    t.match(head, new RegExp(`^HTTP/1\\.1 ${c.status} `), c.rule)
    const headers = Object.fromEntries(head.split('\r\n').slice(1).map((l) => { const k = l.indexOf(':'); return [l.slice(0, k).toLowerCase(), l.slice(k + 1).trim()] }))
    for (const [k, v] of Object.entries(c.expect)) t.equal(headers[k], v, `${c.rule}: ${k}`)
    t.equal(body, c.expect['transfer-encoding'] === 'chunked' ? '0' : '', `${c.rule}: body`)
  }
  t.equal(raws.length, emptyCases.length, 'all on one kept-alive connection')
})

interface EmptyUpCase { rule: string, raw: string, expect: { 'content-length'?: string, 'transfer-encoding'?: string }, bytes: 0 }
const emptyUpCases: EmptyUpCase[] = [
  { rule: 'a GET without body reaches the upstream without Content-Length or Transfer-Encoding', raw: 'GET /e HTTP/1.1\r\nHost: a\r\n\r\n', expect: {}, bytes: 0 },
  { rule: 'a POST with Content-Length: 0 reaches the upstream with Content-Length: 0', raw: 'POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n', expect: { 'content-length': '0' }, bytes: 0 },
  // The body has ended before the upstream request is written, so undici knows its length: 0.
  // nginx (proxy_request_buffering on) sends Content-Length: 0 too.
  { rule: 'a POST with an empty chunked body reaches the upstream with Content-Length: 0 (as nginx)', raw: 'POST /e HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', expect: { 'content-length': '0' }, bytes: 0 }
]

t.test('empty request bodies', async (t) => {
  const up = await upstreamWith(t, {})
  const { port } = await startProxyTo(t, up)
  for (const c of emptyUpCases) {
    up.got.length = 0
    const [raw] = await inTurn(t, { port }, [c.raw])
    t.match(raw, /^HTTP\/1\.1 200 /, c.rule)
    const seen = up.got[0]
    t.equal(seen?.bytes, 0, `${c.rule}: no bytes`)
    t.equal(seen?.headers['content-length'], c.expect['content-length'], `${c.rule}: content-length`)
    t.equal(seen?.headers['transfer-encoding'], c.expect['transfer-encoding'], `${c.rule}: transfer-encoding`)
  }
})

// ---------------------------------------------------------------------------------------------
// Expect: 100-continue
// ---------------------------------------------------------------------------------------------

t.test('Expect: 100-continue: the proxy answers 100, the client then sends its body, the upstream gets it without Expect', async (t) => {
  const up = await upstreamWith(t, {})
  const { port } = await startProxyTo(t, up)
  const body = crypto.randomBytes(200_000)
  const c = rawConnection(t, { port })
  c.write(`PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`)
  t.ok(await c.until(/^HTTP\/1\.1 100 Continue\r\n\r\n/, 2000), 'got 100 Continue before sending the body')
  t.equal(up.got.length, 0, 'nothing complete reached the upstream yet')
  c.write(body)
  t.ok(await c.until(/\r\n\r\n\{.*\}$/s, 3000), 'then the final response')
  const buf = c.received
  const final = buf.slice(buf.indexOf('\r\n\r\n') + 4)
  t.match(final, /^HTTP\/1\.1 200 OK\r\n/)
  t.same(JSON.parse(final.slice(final.indexOf('\r\n\r\n') + 4)), { bytes: body.length, hash: sha256(body) })
  t.equal(up.got[0]?.headers.expect, undefined, 'Expect is not forwarded (we answered it)')
  t.equal(up.got[0]?.headers['content-length'], String(body.length))
})

t.test('a streamed body: an upstream that answers before the whole body arrived, the client gets the answer at once', async (t) => {
  const up = await upstreamWith(t, { '/stream/reject': (_req, res) => res.writeHead(413, { 'content-type': 'text/plain', 'content-length': '8' }).end('too big\n') })
  const { port } = await startProxyTo(t, up)
  const t0 = performance.now()
  const c = rawConnection(t, { port })
  c.write('PUT /stream/reject HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\nX-Answer-Early: 1\r\n\r\n')
  // After 100 Continue, send a tenth of the body, then nothing.
  const answered = (got: string): boolean => got.includes('too big\n')
  if (await c.until((got) => got === 'HTTP/1.1 100 Continue\r\n\r\n' || answered(got), 3000) && !answered(c.received)) c.write(Buffer.alloc(100_000, 97))
  await c.until(answered, 3000)
  c.socket.destroy()
  const raw = c.received
  const ms = performance.now() - t0
  t.match(raw, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 413 /, 'the 413 reaches the client while 900 KB of the body are unsent')
  t.ok(ms < 1000, `at once (${ms.toFixed(0)} ms)`)
})

// ---------------------------------------------------------------------------------------------
// trailers
// ---------------------------------------------------------------------------------------------

t.test('trailers from the upstream are dropped, as nginx does; the body arrives whole', async (t) => {
  const up = await upstreamWith(t, {
    '/trailers': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'X-Checksum' })
      res.write('hello ')
      res.addTrailers({ 'X-Checksum': 'abc123' })
      res.end('world')
    }
  })
  const { port } = await startProxyTo(t, up)
  const got = await send(port, { path: '/trailers' })
  t.equal(got.status, 200)
  t.equal(got.hash, sha256(Buffer.from('hello world')), 'body intact')
  t.same(got.trailers, {}, 'no trailers reach the client')
  t.equal(got.headers.trailer, undefined, 'the Trailer header is dropped too (hop-by-hop)')
  t.equal(got.headers['transfer-encoding'], 'chunked')
})
