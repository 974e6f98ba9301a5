/**
 * proxyctl's own HTTP/1.1 upstream client (packages/plugins/src/upstream/h1/), which carries
 * every request without a body to a plain-HTTP upstream: through a real proxyctl, with raw
 * upstreams (127.0.0.1 and unix sockets) that write exact bytes, and node:http as the client.
 * Tables of rules: response framing (RFC 9112 §6.3), heads split across reads, keep-alive reuse,
 * bad responses (502 and the log's reason), responses cut after their head, a slow client
 * (backpressure), the request head the upstream sees; and parseResponseHead on its own.
 */
import crypto from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { ProxyConfig } from '@proxyctl/core'
import { proxy } from '@proxyctl/plugins'
import { tmpDir } from '../helpers/proxy.js'
import { rawExchange, rawUpstream, type RawServer } from '../helpers/raw-http.js'
import { activeConnections, startLogged } from '../helpers/failure.js'
import { waitFor, type Teardown } from '../helpers/lifecycle.js'
import { Framing, parseResponseHead, type ResponseHead } from '../../packages/plugins/src/upstream/h1/response-head.js'

const PAGE_502 = '<center><h1>502 Bad Gateway</h1></center>'
/** The client gives up on a silent connection after this, and rawExchange after this. */
const BOUND = 5000
/** The proxy's read timeout: a response the client never gets ends as a 504 by then, not a hang. */
const READ_TIMEOUT = 3000
const MiB = 1 << 20

// ---------------------------------------------------------------------------------------------
// raw upstreams: exact bytes, written as a row says
// ---------------------------------------------------------------------------------------------

/** A piece of an upstream's answer: bytes, a pause, or the end of its connection. */
type Piece = string | Buffer | { wait: number } | 'end' | 'reset'

/**
 * How bytes are written: at once, one byte per write, in pieces of `size` bytes, or cut `at` the
 * given offsets; with `gap` ms between writes (1 by default), so that each is its own read.
 */
type WriteMode = 'whole' | 'bytewise' | { size: number } | { at: number[] }

interface Upstream {
  /** As a proxy target: `http://127.0.0.1:PORT` or `http://unix:/path:`. */
  target: string
  /** As the proxy's log names the server. */
  address: string
  server: RawServer
  /** Request heads received, in order (all connections). */
  heads: string[]
}

type Listen = 'tcp' | 'unix'

/**
 * Request heads of one keep-alive connection, in order, as they come (helpers' readHead reads
 * one head and drops what follows it; the proxy's requests here have no body, so heads are all).
 * Resolves null once the connection is closed.
 */
function headReader (sock: net.Socket): () => Promise<string | null> {
  let buf = ''
  let closed = false
  const ready: string[] = []
  const waiting: Array<(head: string | null) => void> = []
  sock.on('data', (d: Buffer) => {
    buf += d.toString('latin1')
    for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
      const head = buf.slice(0, end)
      buf = buf.slice(end + 4)
      const w = waiting.shift()
      if (w !== undefined) w(head)
      else ready.push(head)
    }
  })
  sock.on('close', () => { closed = true; for (const w of waiting.splice(0)) w(null) })
  return () => ready.length > 0 ? Promise.resolve(ready.shift() as string) : closed ? Promise.resolve(null) : new Promise((resolve) => waiting.push(resolve))
}

/** Writes `bytes` as `mode` says; stops if the socket is gone. */
async function writeAs (sock: net.Socket, bytes: Buffer, mode: WriteMode, gap = 1): Promise<void> {
  const cuts: number[] = []
  if (mode === 'whole') cuts.push(bytes.length)
  else if (mode === 'bytewise') for (let i = 1; i <= bytes.length; i++) cuts.push(i)
  else if ('size' in mode) for (let i = mode.size; i < bytes.length + mode.size; i += mode.size) cuts.push(Math.min(i, bytes.length))
  else cuts.push(...mode.at.filter((n) => n > 0 && n < bytes.length), bytes.length)
  let from = 0
  for (const to of cuts) {
    if (sock.destroyed) return
    if (from > 0) await sleep(gap)
    sock.write(bytes.subarray(from, to))
    from = to
  }
}

/**
 * A raw upstream answering each request (n: its index over all connections) with the pieces
 * `answer` gives, bytes written as `mode` says. Keeps each connection open unless told.
 */
async function upstream (t: Teardown, listen: Listen, answer: (n: number, head: string) => Piece[], mode: WriteMode = 'whole'): Promise<Upstream> {
  const heads: string[] = []
  const onConnection = (sock: net.Socket): void => {
    sock.setNoDelay(true)
    const next = headReader(sock)
    void (async () => {
      for (let head = await next(); head !== null; head = await next()) {
        const n = heads.length
        heads.push(head)
        for (const piece of answer(n, head)) {
          if (sock.destroyed) return
          if (piece === 'end') sock.end()
          else if (piece === 'reset') sock.resetAndDestroy()
          else if (typeof piece === 'object' && 'wait' in piece) await sleep(piece.wait)
          else await writeAs(sock, typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece, mode)
        }
      }
    })()
  }
  if (listen === 'unix') {
    const file = path.join(tmpDir(t, 'proxyctl-h1-'), 'up.sock')
    const server = await rawUpstream(t, onConnection, { path: file })
    return { target: `http://unix:${file}:`, address: server.address, server, heads }
  }
  const server = await rawUpstream(t, onConnection)
  return { target: `http://${server.address}`, address: server.address, server, heads }
}

/** One server on 127.0.0.1:0 (or the unix socket `listen`) whose `/` proxies to `target`. */
function config (target: string, listen = '127.0.0.1:0'): ProxyConfig {
  return { servers: [{ listen, locations: { '/': proxy(target, { readTimeout: READ_TIMEOUT }) } }] }
}

// ---------------------------------------------------------------------------------------------
// the client: node:http against the proxy
// ---------------------------------------------------------------------------------------------

/** How the client reads the body: stop `startAfter` ms after the head; stop `ms` after every `every` bytes. */
interface ReadPlan { startAfter?: number, every?: number, ms?: number }

interface Got {
  status: number
  headers: http.IncomingHttpHeaders
  /** The body (kept up to 4 MiB; `bytes` and `sha256` count all of it). */
  body: Buffer
  bytes: number
  sha256: string
  /** The body ended as framed (false: the connection was cut). */
  complete: boolean
  /** Status codes of 1xx responses the client saw. */
  informational: number[]
  /** The request went on a kept-alive client connection. */
  reused: boolean
  /** Set when no response came. */
  error?: string
}

/** A request to the proxy at `to`: a port on 127.0.0.1, or a unix socket path. */
function get (to: number | string, opts: { method?: string, path?: string, agent?: http.Agent, headers?: Record<string, string>, read?: ReadPlan } = {}): Promise<Got> {
  return new Promise((resolve) => {
    const informational: number[] = []
    const req = http.request({ ...(typeof to === 'string' ? { socketPath: to } : { host: '127.0.0.1', port: to }), method: opts.method ?? 'GET', path: opts.path ?? '/', agent: opts.agent ?? false, headers: opts.headers ?? {} }, (res) => {
      const hash = crypto.createHash('sha256')
      const chunks: Buffer[] = []
      let bytes = 0
      let lastStop = 0
      const plan = opts.read ?? {}
      const stop = (ms: number): void => { res.pause(); setTimeout(() => res.resume(), ms) }
      if (plan.startAfter !== undefined) stop(plan.startAfter)
      res.on('data', (d: Buffer) => {
        hash.update(d)
        if (bytes < 4 * MiB) chunks.push(d)
        bytes += d.length
        if (plan.every !== undefined && bytes - lastStop >= plan.every) { lastStop = bytes; stop(plan.ms ?? 0) }
      })
      res.on('error', () => {})
      res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), bytes, sha256: hash.digest('hex'), complete: res.complete, informational, reused: req.reusedSocket }))
    })
    req.on('information', (info) => informational.push(info.statusCode))
    req.setTimeout(BOUND, () => req.destroy(new Error(`no answer within ${BOUND} ms`)))
    req.on('error', (err) => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), bytes: 0, sha256: '', complete: false, informational, reused: req.reusedSocket, error: err.message }))
    req.end()
  })
}

const sha256 = (b: Buffer | string): string => crypto.createHash('sha256').update(b).digest('hex')

/** A chunked body: `body` cut into chunks of the given sizes (cycled), then the last chunk. */
function chunked (body: Buffer, sizes: number[]): Buffer {
  const parts: Buffer[] = []
  for (let pos = 0, i = 0; pos < body.length; i++) {
    const n = Math.min(sizes[i % sizes.length] as number, body.length - pos)
    parts.push(Buffer.from(`${n.toString(16)}\r\n`), body.subarray(pos, pos + n), Buffer.from('\r\n'))
    pos += n
  }
  parts.push(Buffer.from('0\r\n\r\n'))
  return Buffer.concat(parts)
}

const head = (lines: string[]): string => lines.join('\r\n') + '\r\n\r\n'
/** What every upstream answers to a request after the row's: 200, "next". */
const NEXT = head(['HTTP/1.1 200 OK', 'Content-Length: 4']) + 'next'

const BODY_1M5 = crypto.randomBytes(1.5 * MiB)
const BODY_300K = crypto.randomBytes(300 * 1024)
const BODY_1M = crypto.randomBytes(MiB)

// ---------------------------------------------------------------------------------------------
// 1, 2. response framing, and heads split across reads
// ---------------------------------------------------------------------------------------------

interface ResponseRow {
  rule: string
  listen?: Listen
  method?: string
  /** What the upstream writes to the first request. */
  response: string | Buffer
  /** How it is written. */
  write?: WriteMode
  /** The upstream ends the connection after the response (close-delimited bodies). */
  end?: boolean
  want: { status: number, body: string | Buffer, headers?: Record<string, string | undefined> }
  /** After it, a GET answered by NEXT: how many upstream connections the two took (1: reused). */
  connections: number
}

const responseRows: ResponseRow[] = [
  {
    rule: 'a Content-Length body arrives intact and the connection carries the next request',
    response: head(['HTTP/1.1 200 OK', 'Content-Type: text/plain', 'Content-Length: 11']) + 'hello world',
    want: { status: 200, body: 'hello world', headers: { 'content-length': '11', 'content-type': 'text/plain' } },
    connections: 1
  },
  {
    rule: 'a 1.5 MiB Content-Length body arrives byte for byte (sha256) and the connection is reused',
    response: Buffer.concat([Buffer.from(head(['HTTP/1.1 200 OK', `Content-Length: ${BODY_1M5.length}`])), BODY_1M5]),
    want: { status: 200, body: BODY_1M5 },
    connections: 1
  },
  {
    rule: 'Content-Length: 0 is an empty body, complete at once, and the connection is reused',
    response: head(['HTTP/1.1 200 OK', 'Content-Length: 0']),
    want: { status: 200, body: '', headers: { 'content-length': '0' } },
    connections: 1
  },
  {
    rule: 'a chunked body is de-chunked intact and the connection is reused',
    response: head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']) + '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    want: { status: 200, body: 'hello world' },
    connections: 1
  },
  {
    rule: 'a chunked response written one byte per write (head included) arrives intact',
    response: head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']) + '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    write: 'bytewise',
    want: { status: 200, body: 'hello world' },
    connections: 1
  },
  {
    rule: 'a 300 KiB chunked body of odd-sized chunks, written in 1021-byte pieces (cuts in size lines, CRLFs, data), arrives byte for byte',
    response: Buffer.concat([Buffer.from(head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'])), chunked(BODY_300K, [1, 4093, 17, 9000, 2, 555])]),
    write: { size: 1021 },
    want: { status: 200, body: BODY_300K },
    connections: 1
  },
  {
    rule: 'chunk extensions are ignored and trailers are read past: body intact, the connection is reused',
    response: head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Trailer: X-Checksum']) +
      '5;name=value\r\nhello\r\n6 ; a=b;c="d;e"\r\n world\r\n0;last\r\nX-Checksum: abc\r\nX-Other: 2\r\n\r\n',
    want: { status: 200, body: 'hello world' },
    connections: 1
  },
  {
    rule: 'chunk extensions and trailers written one byte per write are parsed the same',
    response: head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']) + '5;x=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n',
    write: 'bytewise',
    want: { status: 200, body: 'hello' },
    connections: 1
  },
  {
    rule: 'no length (HTTP/1.1): the body runs until the upstream closes; that connection is not reused',
    response: head(['HTTP/1.1 200 OK', 'Content-Type: text/plain']) + 'until close',
    end: true,
    want: { status: 200, body: 'until close' },
    connections: 2
  },
  {
    rule: 'no length (HTTP/1.0): the body runs until the upstream closes',
    response: head(['HTTP/1.0 200 OK', 'Content-Type: text/plain']) + 'one point oh',
    end: true,
    want: { status: 200, body: 'one point oh' },
    connections: 2
  },
  {
    rule: 'a 1 MiB close-delimited body written in 7 KiB pieces arrives byte for byte',
    response: Buffer.concat([Buffer.from(head(['HTTP/1.1 200 OK'])), BODY_1M]),
    write: { size: 7 * 1024 },
    end: true,
    want: { status: 200, body: BODY_1M },
    connections: 2
  },
  {
    rule: 'Transfer-Encoding other than chunked last: the body runs until close',
    response: head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked, identity']) + 'raw bytes',
    end: true,
    want: { status: 200, body: 'raw bytes' },
    connections: 2
  },
  {
    rule: 'HEAD: no body is read even though the head says Content-Length: 5, and the connection is reused',
    method: 'HEAD',
    response: head(['HTTP/1.1 200 OK', 'Content-Length: 5']),
    want: { status: 200, body: '', headers: { 'content-length': '5' } },
    connections: 1
  },
  {
    rule: 'HEAD: no body is read even though the head says Transfer-Encoding: chunked, and the connection is reused',
    method: 'HEAD',
    response: head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']),
    want: { status: 200, body: '' },
    connections: 1
  },
  {
    rule: '204 has no body, and the connection is reused',
    response: head(['HTTP/1.1 204 No Content', 'X-A: 1']),
    want: { status: 204, body: '', headers: { 'x-a': '1' } },
    connections: 1
  },
  {
    rule: "304 has no body even with the representation's Content-Length: 100, and the connection is reused",
    response: head(['HTTP/1.1 304 Not Modified', 'ETag: "v1"', 'Content-Length: 100']),
    want: { status: 304, body: '', headers: { etag: '"v1"' } },
    connections: 1
  },
  {
    rule: '100 Continue before the 200 is skipped',
    response: 'HTTP/1.1 100 Continue\r\n\r\n' + head(['HTTP/1.1 200 OK', 'Content-Length: 2']) + 'ok',
    want: { status: 200, body: 'ok' },
    connections: 1
  },
  {
    rule: '100 and 103 Early Hints (with headers) before the 200 are skipped',
    response: 'HTTP/1.1 100 Continue\r\n\r\n' + head(['HTTP/1.1 103 Early Hints', 'Link: </s.css>; rel=preload']) +
      head(['HTTP/1.1 200 OK', 'Content-Length: 2', 'X-Final: yes']) + 'ok',
    want: { status: 200, body: 'ok', headers: { 'x-final': 'yes', link: undefined } },
    connections: 1
  },
  {
    rule: 'over a unix socket: a chunked body arrives intact and the connection is reused',
    listen: 'unix',
    response: head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']) + '3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n',
    want: { status: 200, body: 'abcdef' },
    connections: 1
  },
  {
    rule: 'over a unix socket: a 1.5 MiB Content-Length body arrives byte for byte',
    listen: 'unix',
    response: Buffer.concat([Buffer.from(head(['HTTP/1.1 200 OK', `Content-Length: ${BODY_1M5.length}`])), BODY_1M5]),
    write: { size: 100_000 },
    want: { status: 200, body: BODY_1M5 },
    connections: 1
  }
]

const WITH_BODY = head(['HTTP/1.1 200 OK', 'Content-Length: 2', 'X-Test: split']) + 'ok'
const WITH_BODY_LF = 'HTTP/1.1 200 OK\nContent-Length: 2\nX-Test: lf\n\nok'

const headRows: ResponseRow[] = [
  {
    rule: 'a head written one byte per write is parsed',
    response: WITH_BODY,
    write: 'bytewise',
    want: { status: 200, body: 'ok', headers: { 'x-test': 'split' } },
    connections: 1
  },
  {
    rule: 'a head cut between the "\\r\\n\\r" and the "\\n" of its end is parsed',
    response: WITH_BODY,
    write: { at: [WITH_BODY.indexOf('\r\n\r\n') + 3] },
    want: { status: 200, body: 'ok', headers: { 'x-test': 'split' } },
    connections: 1
  },
  {
    rule: 'a head cut in the middle of a header name and of the status line is parsed',
    response: WITH_BODY,
    write: { at: [5, WITH_BODY.indexOf('X-Te') + 3] },
    want: { status: 200, body: 'ok', headers: { 'x-test': 'split' } },
    connections: 1
  },
  {
    rule: 'bare-LF line endings are accepted',
    response: WITH_BODY_LF,
    want: { status: 200, body: 'ok', headers: { 'x-test': 'lf' } },
    connections: 1
  },
  {
    rule: 'a bare-LF head written one byte per write is parsed',
    response: WITH_BODY_LF,
    write: 'bytewise',
    want: { status: 200, body: 'ok', headers: { 'x-test': 'lf' } },
    connections: 1
  },
  {
    rule: 'a bare-LF chunked body is parsed',
    response: 'HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n',
    want: { status: 200, body: 'ok' },
    connections: 1
  },
  {
    rule: 'a 100 Continue and the 200 after it, written one byte per write, are parsed',
    response: 'HTTP/1.1 100 Continue\r\n\r\n' + WITH_BODY,
    write: 'bytewise',
    want: { status: 200, body: 'ok', headers: { 'x-test': 'split' } },
    connections: 1
  },
  {
    rule: 'a 15 KiB head (under the 16 KiB limit) is accepted',
    response: head(['HTTP/1.1 200 OK', `X-Big: ${'b'.repeat(15 * 1024)}`, 'Content-Length: 2']) + 'ok',
    want: { status: 200, body: 'ok', headers: { 'x-big': 'b'.repeat(15 * 1024) } },
    connections: 1
  },
  {
    rule: 'a 15 KiB head arriving in two reads is accepted',
    response: head(['HTTP/1.1 200 OK', `X-Big: ${'b'.repeat(15 * 1024)}`, 'Content-Length: 2']) + 'ok',
    write: { at: [8 * 1024] },
    want: { status: 200, body: 'ok', headers: { 'x-big': 'b'.repeat(15 * 1024) } },
    connections: 1
  }
]

for (const [table, rows] of [['response framing', responseRows], ['heads across reads', headRows]] as const) {
  for (const row of rows) {
    t.test(`${table}: ${row.rule}`, { timeout: 20_000 }, async (t) => {
      const up = await upstream(t, row.listen ?? 'tcp', (n) => n === 0 ? [row.response, ...(row.end === true ? ['end' as const] : [])] : [NEXT], row.write)
      const p = await startLogged(t, config(up.target))
      const got = await get(p.port, { method: row.method ?? 'GET', path: '/first' })
      t.equal(got.error, undefined, 'a response')
      t.equal(got.status, row.want.status)
      t.ok(got.complete, 'the body ended cleanly')
      const want = typeof row.want.body === 'string' ? Buffer.from(row.want.body, 'latin1') : row.want.body
      if (want.length > 4096) {
        t.equal(got.bytes, want.length, 'every byte')
        t.equal(got.sha256, sha256(want), 'the same bytes (sha256)')
      } else t.equal(got.body.toString('latin1'), want.toString('latin1'))
      for (const [name, value] of Object.entries(row.want.headers ?? {})) t.equal(got.headers[name], value, `header ${name}`)
      t.same(got.informational, [], 'no 1xx reached the client')
      const next = await get(p.port, { path: '/next' })
      t.equal(`${next.status} ${next.body.toString()}`, '200 next', 'the next request is answered')
      t.equal(up.server.accepted, row.connections, `upstream connections: ${up.server.accepted}`)
      t.same(p.errors(), [], 'nothing logged as an error')
      t.equal(activeConnections(p.proxy), 0, 'peer released')
    })
  }
}

// ---------------------------------------------------------------------------------------------
// 3. connection reuse
// ---------------------------------------------------------------------------------------------

const OK = head(['HTTP/1.1 200 OK', 'Content-Length: 2']) + 'ok'

interface ReuseRow {
  rule: string
  listen?: Listen
  /** The upstream's answer to its n-th request (over all connections). */
  answer: (n: number) => Piece[]
  requests: number
  /** ms between one response and the next request. */
  gap?: number
  /** Connections the upstream accepted for all of them. */
  connections: number
}

const reuseRows: ReuseRow[] = [
  {
    rule: 'three sequential GETs reuse one upstream connection (TCP)',
    answer: () => [OK],
    requests: 3,
    connections: 1
  },
  {
    rule: 'three sequential GETs reuse one upstream connection (unix socket)',
    listen: 'unix',
    answer: () => [OK],
    requests: 3,
    connections: 1
  },
  {
    rule: 'an idle connection is reused after a pause well under its expiry (300 ms)',
    answer: () => [OK],
    requests: 2,
    gap: 300,
    connections: 1
  },
  {
    rule: "the upstream's Connection: close: the next request opens a new connection (the upstream keeps it open)",
    answer: () => [head(['HTTP/1.1 200 OK', 'Connection: close', 'Content-Length: 2']) + 'ok'],
    requests: 3,
    connections: 3
  },
  {
    rule: 'Connection: keep-alive, close (a list naming close) is not reused either',
    answer: () => [head(['HTTP/1.1 200 OK', 'Connection: keep-alive, Close', 'Content-Length: 2']) + 'ok'],
    requests: 2,
    connections: 2
  },
  {
    rule: 'an HTTP/1.0 response without keep-alive is not reused (the upstream keeps it open)',
    answer: () => [head(['HTTP/1.0 200 OK', 'Content-Length: 2']) + 'ok'],
    requests: 3,
    connections: 3
  },
  {
    rule: 'an HTTP/1.0 response with Connection: keep-alive is reused',
    answer: () => [head(['HTTP/1.0 200 OK', 'Connection: keep-alive', 'Content-Length: 2']) + 'ok'],
    requests: 3,
    connections: 1
  },
  {
    rule: 'extra bytes after a complete response (same write): that connection is not reused, the next request succeeds',
    answer: (n) => [n === 0 ? OK + 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra' : OK],
    requests: 3,
    connections: 2
  },
  {
    rule: 'bytes arriving later on an idle connection: it is closed, the next request succeeds on a new one',
    answer: (n) => n === 0 ? [OK, { wait: 30 }, 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate'] : [OK],
    requests: 2,
    gap: 250,
    connections: 2
  },
  {
    rule: 'an idle connection the upstream closes (FIN): the next request succeeds on a new connection, no 502',
    answer: (n) => n === 0 ? [OK, { wait: 30 }, 'end'] : [OK],
    requests: 2,
    gap: 250,
    connections: 2
  },
  {
    rule: 'an idle connection the upstream resets (RST): the next request succeeds on a new connection, no 502',
    answer: (n) => n === 0 ? [OK, { wait: 30 }, 'reset'] : [OK],
    requests: 2,
    gap: 250,
    connections: 2
  },
  {
    rule: 'an idle unix-socket connection the upstream closes: the next request succeeds on a new connection',
    listen: 'unix',
    answer: (n) => n === 0 ? [OK, { wait: 30 }, 'end'] : [OK],
    requests: 2,
    gap: 250,
    connections: 2
  },
  {
    rule: "the upstream's Keep-Alive: timeout=1: trusted minus 1 s, i.e. expired at once, never reused",
    answer: () => [head(['HTTP/1.1 200 OK', 'Keep-Alive: timeout=1', 'Content-Length: 2']) + 'ok'],
    requests: 3,
    connections: 3
  },
  {
    rule: "the upstream's Keep-Alive: timeout=5, max=100: reused",
    answer: () => [head(['HTTP/1.1 200 OK', 'Keep-Alive: timeout=5, max=100', 'Content-Length: 2']) + 'ok'],
    requests: 3,
    connections: 1
  },
  {
    rule: "the upstream's Keep-Alive: timeout=2: reused 300 ms later",
    answer: () => [head(['HTTP/1.1 200 OK', 'Keep-Alive: timeout=2', 'Content-Length: 2']) + 'ok'],
    requests: 2,
    gap: 300,
    connections: 1
  },
  {
    rule: "the upstream's Keep-Alive: timeout=2: not reused 1.2 s later (expired after 2 s - 1 s)",
    answer: () => [head(['HTTP/1.1 200 OK', 'Keep-Alive: timeout=2', 'Content-Length: 2']) + 'ok'],
    requests: 2,
    gap: 1200,
    connections: 2
  }
]

for (const row of reuseRows) {
  t.test(`reuse: ${row.rule}`, { timeout: 20_000 }, async (t) => {
    const up = await upstream(t, row.listen ?? 'tcp', row.answer)
    const p = await startLogged(t, config(up.target))
    const seen: string[] = []
    for (let i = 0; i < row.requests; i++) {
      if (i > 0 && row.gap !== undefined) await sleep(row.gap)
      const got = await get(p.port, { path: `/r${i}` })
      seen.push(`${got.status} ${got.body.toString()}${got.complete ? '' : ' (cut)'}`)
    }
    t.same(seen, Array.from({ length: row.requests }, () => '200 ok'), 'every request answered 200 ok')
    t.equal(up.heads.length, row.requests, 'the upstream saw each request once')
    t.equal(up.server.accepted, row.connections, `upstream connections: ${up.server.accepted}`)
    t.same(p.errors(), [], 'nothing logged as an error')
    t.equal(activeConnections(p.proxy), 0, 'peer released')
  })
}

interface CachedRow {
  rule: string
  /** The upstream's answer to its n-th request (over all connections). */
  answer: (n: number) => Piece[]
  /** Method of each request, one after the other. */
  methods: string[]
  /** What each got: "status body". */
  seen: string[]
  /** Requests the upstream read (the retried one twice). */
  heads: number
  /** Error lines the proxy logged. */
  errors: number
}

// nginx gives a request one more try when its kept-alive (cached) connection fails with an error
// before the response head: the server may just have closed the idle connection as the request
// went out (ngx_http_upstream_next: u->peer.cached && ft_type == NGX_HTTP_UPSTREAM_FT_ERROR,
// u->peer.tries++). The failure is still logged; the retry obeys the usual next-upstream rules.
const cachedRows: CachedRow[] = [
  {
    rule: 'a GET whose kept-alive connection the upstream closes without answering is tried again on a new one',
    answer: (n) => n === 1 ? ['end'] : [OK],
    methods: ['GET', 'GET'],
    seen: ['200 ok', '200 ok'],
    heads: 3,
    errors: 1
  },
  {
    rule: 'a GET whose kept-alive connection the upstream resets is tried again',
    answer: (n) => n === 1 ? ['reset'] : [OK],
    methods: ['GET', 'GET'],
    seen: ['200 ok', '200 ok'],
    heads: 3,
    errors: 1
  },
  {
    rule: 'a close halfway through the head of a kept-alive connection is tried again',
    answer: (n) => n === 1 ? ['HTTP/1.1 200 OK\r\nContent-Le', 'end'] : [OK],
    methods: ['GET', 'GET'],
    seen: ['200 ok', '200 ok'],
    heads: 3,
    errors: 1
  },
  {
    rule: 'only one extra try: the new connection closing too is a 502',
    answer: (n) => n >= 1 ? ['end'] : [OK],
    methods: ['GET', 'GET'],
    seen: ['200 ok', '502 bad gateway'],
    heads: 3,
    errors: 2
  },
  {
    rule: 'a fresh connection closing without an answer is not tried again: 502',
    answer: () => ['end'],
    methods: ['GET'],
    seen: ['502 bad gateway'],
    heads: 1,
    errors: 1
  },
  {
    rule: 'an invalid answer on a kept-alive connection is not an error of the connection: 502, no retry',
    answer: (n) => n === 1 ? ['HTTP/1.1 2x0 Nope\r\n\r\n'] : [OK],
    methods: ['GET', 'GET'],
    seen: ['200 ok', '502 bad gateway'],
    heads: 2,
    errors: 1
  },
  {
    rule: 'a bodiless POST (not idempotent, already sent) is not tried again: 502',
    answer: (n) => n === 1 ? ['end'] : [OK],
    methods: ['GET', 'POST'],
    seen: ['200 ok', '502 bad gateway'],
    heads: 2,
    errors: 1
  }
]

for (const row of cachedRows) {
  t.test(`cached connection: ${row.rule}`, { timeout: 20_000 }, async (t) => {
    const up = await upstream(t, 'tcp', row.answer)
    const p = await startLogged(t, config(up.target))
    const seen: string[] = []
    for (const [i, method] of row.methods.entries()) {
      const got = await get(p.port, { method, path: `/c${i}` })
      seen.push(`${got.status} ${/502 Bad Gateway/.test(got.body.toString()) ? 'bad gateway' : got.body.toString()}`)
    }
    t.same(seen, row.seen, 'answers')
    t.equal(up.heads.length, row.heads, `requests the upstream read: ${up.heads.length}`)
    t.equal(p.errors().length, row.errors, `error lines: ${p.errors().map((l) => l.msg).join(' | ')}`)
    t.equal(activeConnections(p.proxy), 0, 'peer released')
  })
}

// ---------------------------------------------------------------------------------------------
// 4. bad responses: 502, and the log says why
// ---------------------------------------------------------------------------------------------

interface BadRow {
  rule: string
  listen?: Listen
  /** What the upstream writes (then it keeps the connection open, unless `end`). */
  response: string
  write?: WriteMode
  end?: boolean
  reason: RegExp
  code: string
}

const BIG_HEAD = head(['HTTP/1.1 200 OK', `X-Big: ${'b'.repeat(17 * 1024)}`, 'Content-Length: 2']) + 'ok'
const INVALID = 'PROXYCTL_UPSTREAM_BAD_RESPONSE'

const badRows: BadRow[] = [
  {
    rule: 'an invalid status line (reason before code)',
    response: head(['HTTP/1.1 OK 200', 'Content-Length: 0']),
    reason: /^upstream sent an invalid response \(PROXYCTL_H1_BAD_RESPONSE: invalid status line "HTTP\/1\.1 OK 200"\)$/,
    code: INVALID
  },
  {
    rule: 'an HTTP/2.0 status line',
    response: head(['HTTP/2.0 200 OK', 'Content-Length: 0']),
    reason: /invalid status line "HTTP\/2\.0 200 OK"/,
    code: INVALID
  },
  {
    rule: 'a two-digit status code',
    response: head(['HTTP/1.1 20 OK', 'Content-Length: 0']),
    reason: /invalid status line "HTTP\/1\.1 20 OK"/,
    code: INVALID
  },
  {
    rule: 'an invalid header name (a space in it)',
    response: head(['HTTP/1.1 200 OK', 'Bad Name: x', 'Content-Length: 0']),
    reason: /^upstream sent an invalid response \(PROXYCTL_H1_BAD_RESPONSE: invalid header name "Bad Name"\)$/,
    code: INVALID
  },
  {
    rule: 'whitespace between a header name and its colon',
    response: head(['HTTP/1.1 200 OK', 'Content-Length : 0']),
    reason: /invalid header name "Content-Length "/,
    code: INVALID
  },
  {
    rule: 'a header line without a colon',
    response: head(['HTTP/1.1 200 OK', 'NoColonHere', 'Content-Length: 0']),
    reason: /invalid header line "NoColonHere"/,
    code: INVALID
  },
  {
    rule: 'a control character in a header value',
    response: head(['HTTP/1.1 200 OK', 'X-Bad: a\x01b', 'Content-Length: 0']),
    reason: /invalid value of header "X-Bad"/,
    code: INVALID
  },
  {
    rule: 'Content-Length together with Transfer-Encoding',
    response: head(['HTTP/1.1 200 OK', 'Content-Length: 5', 'Transfer-Encoding: chunked']) + '5\r\nhello\r\n0\r\n\r\n',
    reason: /"Content-Length" and "Transfer-Encoding" at the same time/,
    code: INVALID
  },
  {
    rule: 'two different Content-Length values',
    response: head(['HTTP/1.1 200 OK', 'Content-Length: 5', 'Content-Length: 6']) + 'hello!',
    reason: /duplicate Content-Length header/,
    code: INVALID
  },
  {
    // RFC 9110 §8.6 lets a recipient take equal values as one, but then only one may be passed
    // on; nginx ("upstream sent duplicate header line") and undici refuse the response.
    rule: 'two equal Content-Length values',
    response: head(['HTTP/1.1 200 OK', 'Content-Length: 2', 'Content-Length: 2']) + 'ok',
    reason: /duplicate Content-Length header/,
    code: INVALID
  },
  {
    rule: 'a Content-Length that is not a number',
    response: head(['HTTP/1.1 200 OK', 'Content-Length: 5x']) + 'hello',
    reason: /invalid Content-Length "5x"/,
    code: INVALID
  },
  {
    rule: 'a head over 16 KiB, in one write',
    response: BIG_HEAD,
    reason: /^upstream sent an invalid response \(PROXYCTL_H1_HEADERS_OVERFLOW: upstream sent too big header\)$/,
    code: INVALID
  },
  {
    rule: 'a head over 16 KiB that never ends is refused once past 16 KiB (no wait for the read timeout)',
    response: `HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(20 * 1024)}`,
    reason: /too big header/,
    code: INVALID
  },
  {
    rule: 'a head over 16 KiB written one 1 KiB piece at a time',
    response: BIG_HEAD,
    write: { size: 1024 },
    reason: /too big header/,
    code: INVALID
  },
  {
    rule: 'a head over 16 KiB arriving in two reads (9 KiB, then the rest with its end)',
    response: BIG_HEAD,
    write: { at: [9 * 1024] },
    reason: /too big header/,
    code: INVALID
  },
  {
    rule: 'an unexpected 101 Switching Protocols (no upgrade was asked for)',
    response: head(['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade']),
    reason: /^upstream sent an invalid response \(PROXYCTL_H1_BAD_RESPONSE: unexpected 101\)$/,
    code: INVALID
  },
  {
    rule: 'an upstream that closes after half a head',
    response: 'HTTP/1.1 200 OK\r\nContent-Le',
    end: true,
    reason: /^upstream closed or reset the connection while reading from upstream$/,
    code: 'PROXYCTL_UPSTREAM_RESET'
  },
  {
    rule: 'over a unix socket: an invalid status line',
    listen: 'unix',
    response: head(['HTTP/1.1 OK 200', 'Content-Length: 0']),
    reason: /invalid status line "HTTP\/1\.1 OK 200"/,
    code: INVALID
  }
]

for (const row of badRows) {
  t.test(`bad response is a 502: ${row.rule}`, { timeout: 20_000 }, async (t) => {
    const up = await upstream(t, row.listen ?? 'tcp', () => [row.response, ...(row.end === true ? ['end' as const] : [])], row.write)
    const p = await startLogged(t, config(up.target))
    const started = performance.now()
    const got = await get(p.port, { path: '/bad' })
    const ms = performance.now() - started
    t.equal(got.status, 502, `502 (got ${got.status}${got.error !== undefined ? `, ${got.error}` : ''})`)
    t.match(got.body.toString(), PAGE_502, 'nginx-style error page')
    t.ok(ms < READ_TIMEOUT - 500, `answered before the read timeout (${ms.toFixed(0)} ms)`)
    t.ok(await waitFor(() => p.errors().length > 0, 1000), 'an error line was logged')
    const line = p.errors()[0]
    t.match(line, { upstream: up.address, server: up.address, code: row.code, request: 'GET /bad' })
    t.match(String(line?.reason), row.reason, 'log gives the reason')
    t.match(String(line?.msg), `server: ${up.address}`)
    t.equal(activeConnections(p.proxy), 0, 'peer released')
  })
}

// ---------------------------------------------------------------------------------------------
// 4, 5. bad bytes or a close after the head: the client's response is cut
// ---------------------------------------------------------------------------------------------

interface CutRow {
  rule: string
  listen?: Listen
  /** The upstream's pieces. */
  answer: Piece[]
  /**
   * What the client sees: `200 cut "BODY"` (the body so far), or `no response` when the bad bytes
   * came in the same read as the head: the proxy's first write is still corked (Node uncorks on
   * the next tick) when the error destroys the client connection, so nothing reached the client.
   */
  outcome: RegExp
  reason: RegExp
  code: string
}

const CLOSED = /^upstream closed or reset the connection while reading from upstream$/

const cutRows: CutRow[] = [
  {
    rule: 'a bad chunk size after a good chunk',
    answer: [head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']) + '5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n'],
    outcome: /^(no response|200 cut "(hello)?")$/,
    reason: /^upstream sent an invalid response \(PROXYCTL_H1_BAD_RESPONSE: invalid chunked response: chunk size "zz"\)$/,
    code: INVALID
  },
  {
    rule: 'a bad chunk size arriving in its own read, after the first chunk was passed on',
    answer: [head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']) + '5\r\nhello\r\n', { wait: 50 }, '-1\r\nx\r\n0\r\n\r\n'],
    outcome: /^200 cut "hello"$/,
    reason: /chunk size "-1"/,
    code: INVALID
  },
  {
    rule: 'chunk data not followed by CRLF',
    answer: [head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']) + '5\r\nhelloXX\r\n0\r\n\r\n'],
    outcome: /^(no response|200 cut "(hello)?")$/,
    reason: /invalid chunked response: no CRLF after chunk data/,
    code: INVALID
  },
  {
    rule: 'the upstream closes (FIN) before Content-Length is reached',
    answer: [head(['HTTP/1.1 200 OK', 'Content-Length: 100']) + '0123456789', { wait: 50 }, 'end'],
    outcome: /^200 cut "0123456789"$/,
    reason: CLOSED,
    code: 'PROXYCTL_UPSTREAM_RESET'
  },
  {
    rule: 'the upstream resets (RST) before Content-Length is reached',
    answer: [head(['HTTP/1.1 200 OK', 'Content-Length: 100']) + '0123456789', { wait: 50 }, 'reset'],
    outcome: /^200 cut "0123456789"$/,
    reason: CLOSED,
    code: 'PROXYCTL_UPSTREAM_RESET'
  },
  {
    rule: 'the upstream closes before the last chunk',
    answer: [head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']) + 'a\r\n0123456789\r\n', { wait: 50 }, 'end'],
    outcome: /^200 cut "0123456789"$/,
    reason: CLOSED,
    code: 'PROXYCTL_UPSTREAM_RESET'
  },
  {
    rule: 'the upstream closes in the middle of a chunk',
    answer: [head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']) + '14\r\n0123456789', { wait: 50 }, 'end'],
    outcome: /^200 cut "0123456789"$/,
    reason: CLOSED,
    code: 'PROXYCTL_UPSTREAM_RESET'
  },
  {
    rule: 'over a unix socket: the upstream closes before Content-Length is reached',
    listen: 'unix',
    answer: [head(['HTTP/1.1 200 OK', 'Content-Length: 100']) + '0123456789', { wait: 50 }, 'end'],
    outcome: /^200 cut "0123456789"$/,
    reason: CLOSED,
    code: 'PROXYCTL_UPSTREAM_RESET'
  }
]

for (const row of cutRows) {
  t.test(`cut after the head: ${row.rule}`, { timeout: 20_000 }, async (t) => {
    const up = await upstream(t, row.listen ?? 'tcp', (n) => n === 0 ? row.answer : [NEXT])
    const p = await startLogged(t, config(up.target))
    const got = await get(p.port, { path: '/cut' })
    const outcome = got.error !== undefined ? 'no response' : `${got.status} ${got.complete ? 'ended' : 'cut'} "${got.body.toString('latin1')}"`
    t.match(outcome, row.outcome, `the response is cut, not ended cleanly (${outcome})`)
    t.ok(await waitFor(() => p.errors().length > 0, 1000), 'an error line was logged')
    const line = p.errors()[0]
    t.match(line, { upstream: up.address, server: up.address, code: row.code, request: 'GET /cut' })
    t.match(String(line?.reason), row.reason, 'log gives the reason')
    t.ok(await waitFor(() => activeConnections(p.proxy) === 0, 1000), 'peer released')
    const next = await get(p.port, { path: '/next' })
    t.equal(`${next.status} ${next.body.toString()}`, '200 next', 'the next request is answered, on a new connection')
    t.equal(up.server.accepted, 2)
  })
}

// ---------------------------------------------------------------------------------------------
// 6. backpressure: a slow client gets every byte, and the connection goes on afterwards
// ---------------------------------------------------------------------------------------------

/** `size` bytes whose every 32-bit word is its own index: a lost, doubled or moved piece shows. */
function counted (size: number): Buffer {
  const words = new Uint32Array(size / 4)
  for (let i = 0; i < words.length; i++) words[i] = i
  return Buffer.from(words.buffer)
}

const BODY_16M = counted(16 * MiB)
const BODY_8M = BODY_16M.subarray(0, 8 * MiB)

interface SlowRow {
  rule: string
  /** The upstream's side. */
  listen?: Listen
  /** The client's side. */
  client?: Listen
  body: Buffer
  framing: 'length' | 'chunked' | 'close'
  read: ReadPlan
}

const BODY_100K = BODY_8M.subarray(0, 100 * 1024)

const slowRows: SlowRow[] = [
  {
    rule: 'a 16 MiB Content-Length body to a client that stops for 20 ms after every MiB',
    body: BODY_16M,
    framing: 'length',
    read: { every: MiB, ms: 20 }
  },
  {
    rule: 'a 16 MiB Content-Length body to a client that reads nothing for 500 ms after the head',
    body: BODY_16M,
    framing: 'length',
    read: { startAfter: 500 }
  },
  {
    rule: 'an 8 MiB chunked body (100 KiB chunks) to a client that stops for 20 ms after every MiB',
    body: BODY_8M,
    framing: 'chunked',
    read: { every: MiB, ms: 20 }
  },
  {
    rule: 'an 8 MiB close-delimited body to a client that stops for 20 ms after every MiB',
    body: BODY_8M,
    framing: 'close',
    read: { every: MiB, ms: 20 }
  },
  {
    rule: 'an 8 MiB Content-Length body to a client on a unix socket that stops for 2 ms after every 64 KiB',
    client: 'unix',
    body: BODY_8M,
    framing: 'length',
    read: { every: 64 * 1024, ms: 2 }
  },
  {
    rule: 'over a unix socket upstream: an 8 MiB Content-Length body to a client that stops for 20 ms after every MiB',
    listen: 'unix',
    body: BODY_8M,
    framing: 'length',
    read: { every: MiB, ms: 20 }
  },
  // A body that comes in the same read as its head is handed over in one piece, the first and
  // the last, written with the head through ServerResponse, which corks the client socket until
  // the next tick: that write always asks to wait for 'drain', so the h1 client pauses at the
  // last piece. Resuming it must also resume reading the upstream socket, idle by then, or the
  // next request on that connection never gets its answer.
  {
    rule: 'paused at the last piece: a 100 KiB Content-Length body in the same read as its head, to a client that waits 300 ms',
    body: BODY_100K,
    framing: 'length',
    read: { startAfter: 300 }
  },
  {
    rule: 'paused at the last piece: a 100 KiB chunked body and its end in the same read as its head, to a client that waits 300 ms',
    body: BODY_100K,
    framing: 'chunked',
    read: { startAfter: 300 }
  },
  {
    rule: 'paused at the last piece, over unix sockets on both sides: a 100 KiB Content-Length body in the same read as its head',
    listen: 'unix',
    client: 'unix',
    body: BODY_100K,
    framing: 'length',
    read: { startAfter: 300 }
  }
]

/** The upstream's answer for a slow-client row, in one write (then the end, if close-delimited). */
function slowResponse (row: SlowRow): Piece[] {
  const bytes = row.framing === 'chunked'
    ? Buffer.concat([Buffer.from(head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'])), chunked(row.body, [100 * 1024])])
    : Buffer.concat([Buffer.from(head(['HTTP/1.1 200 OK', ...(row.framing === 'length' ? [`Content-Length: ${row.body.length}`] : [])])), row.body])
  return row.framing === 'close' ? [bytes, 'end'] : [bytes]
}

for (const row of slowRows) {
  t.test(`slow client: ${row.rule}; then the next request on the same client connection`, { timeout: 30_000 }, async (t) => {
    const up = await upstream(t, row.listen ?? 'tcp', (n) => n === 0 ? slowResponse(row) : [NEXT])
    const sock = row.client === 'unix' ? path.join(tmpDir(t, 'proxyctl-h1-'), 'proxy.sock') : undefined
    const p = await startLogged(t, config(up.target, sock !== undefined ? `unix:${sock}` : undefined))
    const to = sock ?? p.port
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => agent.destroy())
    const got = await get(to, { path: '/big', agent, read: row.read })
    t.equal(got.status, 200)
    t.ok(got.complete, 'the body ended cleanly')
    t.equal(got.bytes, row.body.length, 'every byte')
    t.equal(got.sha256, sha256(row.body), 'the same bytes in the same order (sha256)')
    const started = performance.now()
    const next = await get(to, { path: '/next', agent })
    const ms = performance.now() - started
    t.equal(`${next.status} ${next.body.toString()}`, '200 next', 'the next request is answered')
    t.ok(next.reused, 'on the same client connection')
    t.ok(ms < 1000, `at once (${ms.toFixed(0)} ms)`)
    t.equal(up.server.accepted, row.framing === 'close' ? 2 : 1, 'upstream connections: the first one reused unless close-delimited')
    t.same(p.errors(), [], 'nothing logged as an error')
    t.equal(activeConnections(p.proxy), 0, 'peer released')
  })
}

// ---------------------------------------------------------------------------------------------
// 7. the request head the upstream sees
// ---------------------------------------------------------------------------------------------

interface RequestRow {
  rule: string
  listen?: Listen
  method: string
  /** Sent with node:http (which adds `Content-Length: 0` to a bodiless POST, PUT, PATCH)... */
  headers?: Record<string, string>
  /** ...or these raw bytes (then `method` names the line's method). */
  raw?: string
  want: {
    line: string
    /** The `host` line, first after the request line; HOST stands for the upstream's address. */
    host: string
    /** Every other header line, in order. */
    rest: string[]
  }
}

const requestRows: RequestRow[] = [
  {
    rule: 'GET: host first, then connection: keep-alive, no content-length',
    method: 'GET',
    headers: { 'x-a': '1', connection: 'close' },
    want: { line: 'GET /path?q=1 HTTP/1.1', host: 'host: HOST', rest: ['connection: keep-alive', 'x-a: 1'] }
  },
  {
    rule: "the client's Host is not passed on: host is the upstream's (proxy_host), still first",
    method: 'GET',
    headers: { host: 'client.example', 'x-a': '1' },
    want: { line: 'GET /path?q=1 HTTP/1.1', host: 'host: HOST', rest: ['connection: keep-alive', 'x-a: 1'] }
  },
  {
    rule: 'HEAD: no content-length',
    method: 'HEAD',
    want: { line: 'HEAD /path?q=1 HTTP/1.1', host: 'host: HOST', rest: ['connection: keep-alive'] }
  },
  {
    rule: 'DELETE without a body: no content-length',
    method: 'DELETE',
    want: { line: 'DELETE /path?q=1 HTTP/1.1', host: 'host: HOST', rest: ['connection: keep-alive'] }
  },
  {
    rule: "a bodiless POST (client's Content-Length: 0): content-length: 0, once, last",
    method: 'POST',
    headers: { 'x-a': '1' },
    want: { line: 'POST /path?q=1 HTTP/1.1', host: 'host: HOST', rest: ['connection: keep-alive', 'x-a: 1', 'content-length: 0'] }
  },
  {
    rule: 'a POST with no Content-Length at all: content-length: 0',
    method: 'POST',
    raw: 'POST /path?q=1 HTTP/1.1\r\nHost: client.example\r\nConnection: close\r\n\r\n',
    want: { line: 'POST /path?q=1 HTTP/1.1', host: 'host: HOST', rest: ['connection: keep-alive', 'content-length: 0'] }
  },
  {
    rule: 'a bodiless PUT: content-length: 0',
    method: 'PUT',
    want: { line: 'PUT /path?q=1 HTTP/1.1', host: 'host: HOST', rest: ['connection: keep-alive', 'content-length: 0'] }
  },
  {
    rule: 'a bodiless PATCH: content-length: 0',
    method: 'PATCH',
    want: { line: 'PATCH /path?q=1 HTTP/1.1', host: 'host: HOST', rest: ['connection: keep-alive', 'content-length: 0'] }
  },
  {
    rule: 'over a unix socket, GET: host first, connection: keep-alive, no content-length',
    listen: 'unix',
    method: 'GET',
    want: { line: 'GET /path?q=1 HTTP/1.1', host: 'host: localhost', rest: ['connection: keep-alive'] }
  }
]

for (const row of requestRows) {
  t.test(`request head: ${row.rule}`, { timeout: 20_000 }, async (t) => {
    const up = await upstream(t, row.listen ?? 'tcp', () => [OK])
    const p = await startLogged(t, config(up.target))
    if (row.raw !== undefined) {
      const raw = await rawExchange({ port: p.port }, row.raw, BOUND)
      t.match(raw, /^HTTP\/1\.1 200 /, 'answered')
    } else {
      const got = await get(p.port, { method: row.method, path: '/path?q=1', headers: row.headers })
      t.equal(got.status, 200, 'answered')
    }
    t.equal(up.heads.length, 1, 'one request upstream')
    const lines = (up.heads[0] ?? '').split('\r\n')
    t.equal(lines[0], row.want.line, 'request line')
    t.equal(lines[1], row.want.host.replace('HOST', up.address), 'host first')
    t.same(lines.slice(2), row.want.rest, 'then the other headers, in order')
  })
}

// ---------------------------------------------------------------------------------------------
// parseResponseHead on its own
// ---------------------------------------------------------------------------------------------

interface ParseRow {
  rule: string
  text: string
  method?: string
  want: Partial<ResponseHead> | RegExp
}

const parseRows: ParseRow[] = [
  {
    rule: 'status, reason phrase and headers as sent (names keep their case, values trimmed)',
    text: 'HTTP/1.1 200 OK\r\nContent-Type:  text/plain \r\nContent-Length: 5',
    want: { status: 200, statusText: 'OK', rawHeaders: ['Content-Type', 'text/plain', 'Content-Length', '5'], framing: Framing.Length, length: 5, keepAlive: true, keepAliveHint: 0 }
  },
  { rule: 'a reason phrase with spaces', text: 'HTTP/1.1 404 Not Found Here\r\nContent-Length: 0', want: { status: 404, statusText: 'Not Found Here', framing: Framing.Length, length: 0 } },
  { rule: 'no reason phrase', text: 'HTTP/1.1 204', want: { status: 204, statusText: '', framing: Framing.None, keepAlive: true } },
  { rule: 'bare-LF lines', text: 'HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 2', want: { rawHeaders: ['X-A', '1', 'Content-Length', '2'], framing: Framing.Length, length: 2 } },
  { rule: 'mixed CRLF and bare-LF lines', text: 'HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2', want: { rawHeaders: ['X-A', '1', 'Content-Length', '2'], length: 2 } },
  { rule: 'obs-text (bytes 0x80-0xFF) in a value is kept', text: 'HTTP/1.1 200 OK\r\nX-A: caf\xe9\r\nContent-Length: 0', want: { rawHeaders: ['X-A', 'caf\xe9', 'Content-Length', '0'] } },
  { rule: 'HEAD: no body whatever the head says', method: 'HEAD', text: 'HTTP/1.1 200 OK\r\nContent-Length: 5', want: { framing: Framing.None, keepAlive: true } },
  { rule: 'HEAD with Transfer-Encoding: chunked: no body', method: 'HEAD', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked', want: { framing: Framing.None, keepAlive: true } },
  { rule: '1xx: no body', text: 'HTTP/1.1 103 Early Hints\r\nLink: </a>', want: { status: 103, framing: Framing.None } },
  { rule: '204: no body', text: 'HTTP/1.1 204 No Content', want: { framing: Framing.None, keepAlive: true } },
  { rule: '304 with a Content-Length: no body', text: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 100', want: { framing: Framing.None, keepAlive: true } },
  { rule: 'chunked', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked', want: { framing: Framing.Chunked, keepAlive: true } },
  { rule: 'chunked, any case', text: 'HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked', want: { framing: Framing.Chunked } },
  { rule: 'chunked as the last coding', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked', want: { framing: Framing.Chunked, keepAlive: true } },
  { rule: 'chunked not last: until close, not reusable', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip', want: { framing: Framing.UntilClose, keepAlive: false } },
  { rule: 'no length: until close, not reusable', text: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain', want: { framing: Framing.UntilClose, keepAlive: false } },
  { rule: 'HTTP/1.1 with Connection: close is not reusable', text: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0', want: { keepAlive: false } },
  { rule: 'Connection: Close, any case, in a list', text: 'HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0', want: { keepAlive: false } },
  { rule: 'Connection: closed is not close', text: 'HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0', want: { keepAlive: true } },
  { rule: 'close in a second Connection header counts', text: 'HTTP/1.1 200 OK\r\nConnection: te\r\nConnection: close\r\nContent-Length: 0', want: { keepAlive: false } },
  { rule: 'HTTP/1.0 without keep-alive is not reusable', text: 'HTTP/1.0 200 OK\r\nContent-Length: 0', want: { keepAlive: false } },
  { rule: 'HTTP/1.0 with Connection: keep-alive is reusable', text: 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0', want: { keepAlive: true } },
  { rule: 'Keep-Alive: timeout=5, max=100 is a 5000 ms hint', text: 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0', want: { keepAliveHint: 5000 } },
  { rule: 'Keep-Alive: max=100, timeout = 3 is a 3000 ms hint', text: 'HTTP/1.1 200 OK\r\nKeep-Alive: max=100, timeout = 3\r\nContent-Length: 0', want: { keepAliveHint: 3000 } },
  { rule: 'Keep-Alive without timeout is no hint', text: 'HTTP/1.1 200 OK\r\nKeep-Alive: max=5\r\nContent-Length: 0', want: { keepAliveHint: 0 } },
  { rule: 'refused: a status code with a letter', text: 'HTTP/1.1 2x0 Nope', want: /^invalid status line "HTTP\/1\.1 2x0 Nope"$/ },
  { rule: 'refused: a status code below 100', text: 'HTTP/1.1 099 Low', want: /^invalid status line/ },
  { rule: 'refused: HTTP/2', text: 'HTTP/2 200 OK', want: /^invalid status line/ },
  { rule: 'refused: lower-case http', text: 'http/1.1 200 OK', want: /^invalid status line/ },
  { rule: 'refused: an empty head', text: '', want: /^invalid status line ""$/ },
  { rule: 'refused: a space in a header name', text: 'HTTP/1.1 200 OK\r\nBad Name: x', want: /^invalid header name "Bad Name"$/ },
  { rule: 'refused: a space before the colon', text: 'HTTP/1.1 200 OK\r\nContent-Length : 0', want: /^invalid header name "Content-Length "$/ },
  { rule: 'refused: an obs-fold continuation line', text: 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded', want: /^invalid header line " folded"$/ },
  { rule: 'refused: an empty header name', text: 'HTTP/1.1 200 OK\r\n: x', want: /^invalid header line ": x"$/ },
  { rule: 'refused: NUL in a value', text: 'HTTP/1.1 200 OK\r\nX-A: a\x00b', want: /^invalid value of header "X-A"$/ },
  { rule: 'refused: DEL in a value', text: 'HTTP/1.1 200 OK\r\nX-A: a\x7fb', want: /^invalid value of header "X-A"$/ },
  { rule: 'refused: Content-Length and Transfer-Encoding together', text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5', want: /^"Content-Length" and "Transfer-Encoding" at the same time$/ },
  { rule: 'refused: two different Content-Length values', text: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6', want: /^duplicate Content-Length header$/ },
  { rule: 'refused: the same Content-Length twice', text: 'HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7', want: /^duplicate Content-Length header$/ },
  { rule: 'refused: a Content-Length list', text: 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5', want: /^invalid Content-Length "5, 5"$/ },
  { rule: 'refused: a signed Content-Length', text: 'HTTP/1.1 200 OK\r\nContent-Length: +5', want: /^invalid Content-Length "\+5"$/ },
  { rule: 'refused: a 16-digit Content-Length', text: 'HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456', want: /^invalid Content-Length/ }
]

t.test('parseResponseHead', async (t) => {
  for (const row of parseRows) {
    let got: ResponseHead | Error
    try { got = parseResponseHead(row.text, row.method ?? 'GET') } catch (err) { got = err as Error }
    if (row.want instanceof RegExp) {
      t.ok(got instanceof Error, `${row.rule}: throws`)
      t.match(got, { name: 'H1Error', code: 'PROXYCTL_H1_BAD_RESPONSE', message: row.want }, row.rule)
    } else {
      t.notOk(got instanceof Error, `${row.rule}: parses${got instanceof Error ? ` (threw ${got.message})` : ''}`)
      t.match(got, row.want, row.rule)
      // t.match on arrays is a prefix match: compare raw headers exactly.
      if (row.want.rawHeaders !== undefined && !(got instanceof Error)) t.same(got.rawHeaders, row.want.rawHeaders, `${row.rule}: rawHeaders exactly`)
    }
  }
})
