/**
 * Byte-exact HTTP for tests, where node:http would get in the way; the one raw client and response
 * parser of the suite.
 *
 * Client side:
 *  - `send`: bytes (one write, or parts `gapMs` apart) on a fresh TCP or unix connection, read
 *    until the server closes, goes quiet for `idleMs`, or `ms` pass; `rawExchange` is its
 *    one-write form that returns the text.
 *  - `exchange`: one request built from a method, target and header lines (`Connection: close`
 *    added), its response parsed.
 *  - `rawConnection`: a connection the test writes to and waits on (`until`), for conversations
 *    that depend on what came back; `inTurn` sends requests on one such connection, each once the
 *    previous response is complete.
 *  - `parseResponse` parses one response (1xx heads skipped; `lenient` for what a broken answer
 *    left), `splitResponses` the sequence on one connection, up to a 101.
 *
 * Server side: `startRawUpstream`, a TCP/unix upstream that records each request line and header
 * lines as received (a request line with a space or raw 8-bit bytes too, which node:http
 * refuses) and answers with bytes you choose (any hop-by-hop header, chunked framing, no
 * Date...). Keeps the connection alive between requests, as an HTTP/1.1 server does. It is a
 * `rawUpstream`, which hands each connection to the test (`readHead` reads a request head).
 */
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Teardown } from './lifecycle.js'
import { listenOn, type Listen } from './upstream.js'

export interface RawRequest {
  /** The request line as received, e.g. `GET /a b HTTP/1.1`. */
  line: string
  method: string
  /** Between the first and the last space of the line (nginx-compare.ts reads it the same way). */
  target: string
  /** Header lines in order, as `[name, value]` with the name's case kept. */
  headers: Array<[string, string]>
  body: Buffer
}

/** Header values of `name` (any case), in order. */
export function headerValues (headers: Array<[string, string]>, name: string): string[] {
  const lower = name.toLowerCase()
  return headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v)
}

/** What a responder returns: the raw response bytes; `close` ends the connection after them. */
export type RawReply = string | Buffer | { bytes: string | Buffer, close?: boolean }
export type RawResponder = (req: RawRequest) => RawReply

/** Answers 200 with `{ line, target, headers }` as JSON. */
export const lineEcho: RawResponder = (req) => {
  const body = JSON.stringify({ line: req.line, target: req.target, headers: req.headers, bodyBytes: req.body.length })
  return `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`
}

export interface RawUpstream {
  /** `127.0.0.1:PORT`, `[::1]:PORT` or `unix:/path`. */
  readonly address: string
  readonly seen: RawRequest[]
  respond: RawResponder
}

/** `listen`: `{ host?, port? }` (127.0.0.1 by default) or `{ path }`. Closed when the test ends. */
export async function startRawUpstream (t: Teardown, listen: Listen = {}, respond: RawResponder = lineEcho): Promise<RawUpstream> {
  const up: RawUpstream = { address: '', seen: [], respond }
  const server = await rawUpstream(t, (sock) => {
    let buf = Buffer.alloc(0)
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        const parsed = parseRequest(buf)
        if (parsed === undefined) return
        buf = buf.subarray(parsed.used)
        up.seen.push(parsed.req)
        const reply = up.respond(parsed.req)
        const { bytes, close } = typeof reply === 'object' && !Buffer.isBuffer(reply) ? reply : { bytes: reply, close: false }
        sock.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes)
        if (close === true) { sock.end(); return }
      }
    })
  }, listen)
  ;(up as { address: string }).address = server.address
  return up
}

export interface RawServer {
  /** The TCP port (0 on a unix socket). */
  port: number
  /** `127.0.0.1:PORT`, `[::1]:PORT` or `unix:/path`. */
  address: string
  /** Sockets accepted so far (open or not). */
  accepted: number
  sockets: Set<net.Socket>
}

/**
 * A raw upstream that hands each connection to `onConnection`, which does whatever the case needs
 * (answer, stay silent, misbehave on purpose). `listen`: `{ host?, port? }` (127.0.0.1 by default)
 * or `{ path }`. Every socket is cut and the server closed when the test ends.
 */
export async function rawUpstream (t: Teardown, onConnection: (sock: net.Socket) => void, listen: Listen = {}): Promise<RawServer> {
  const sockets = new Set<net.Socket>()
  const info: RawServer = { port: 0, address: '', accepted: 0, sockets }
  const server = net.createServer((sock) => {
    info.accepted++
    sockets.add(sock)
    sock.on('close', () => sockets.delete(sock))
    sock.on('error', () => {})
    onConnection(sock)
  })
  info.address = await listenOn(server, listen)
  if (!('path' in listen)) info.port = (server.address() as AddressInfo).port
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
  return info
}

/** Reads one request head (up to the blank line) from a raw socket; what follows it is not read. */
export function readHead (sock: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let buf = ''
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1')
      const end = buf.indexOf('\r\n\r\n')
      if (end !== -1) { sock.off('data', onData); resolve(buf.slice(0, end)) }
    }
    sock.on('data', onData)
  })
}

function parseRequest (buf: Buffer): { req: RawRequest, used: number } | undefined {
  const end = buf.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n')
  const line = lines[0] as string
  const headers: Array<[string, string]> = lines.slice(1).map(h => {
    const c = h.indexOf(':')
    return [h.slice(0, c), h.slice(c + 1).trim()]
  })
  let used = end + 4
  let body: Buffer = Buffer.alloc(0)
  const cl = headerValues(headers, 'content-length')[0]
  const te = headerValues(headers, 'transfer-encoding')[0]
  if (te !== undefined && /chunked/i.test(te)) {
    const parts: Buffer[] = []
    let pos = used
    for (;;) {
      const eol = buf.indexOf('\r\n', pos)
      if (eol === -1) return undefined
      const size = parseInt(buf.subarray(pos, eol).toString('latin1'), 16)
      if (size === 0) {
        const trailerEnd = buf.indexOf('\r\n\r\n', eol)
        if (trailerEnd === -1) return undefined
        used = trailerEnd + 4
        break
      }
      if (buf.length < eol + 2 + size + 2) return undefined
      parts.push(buf.subarray(eol + 2, eol + 2 + size))
      pos = eol + 2 + size + 2
    }
    body = Buffer.concat(parts)
  } else if (cl !== undefined) {
    const n = Number(cl)
    if (buf.length < used + n) return undefined
    body = buf.subarray(used, used + n)
    used += n
  }
  const sp1 = line.indexOf(' ')
  const sp2 = line.lastIndexOf(' ')
  return { req: { line, method: line.slice(0, sp1), target: line.slice(sp1 + 1, sp2), headers, body }, used }
}

/* ------------------------------------------------------------------ client */

/** Where a client connects: `{ port }` (127.0.0.1 unless `host`) or `{ socketPath }`. */
export interface Target { host?: string, port?: number, socketPath?: string }

function connect (to: Target): net.Socket {
  return to.socketPath !== undefined ? net.connect(to.socketPath) : net.connect(to.port ?? 80, to.host ?? '127.0.0.1')
}

export interface SendOptions {
  /** Milliseconds between the writes of the parts (the first is written once connected); default 0. */
  gapMs?: number
  /** Stop reading once nothing has arrived for this long (the connection is then still open). */
  idleMs?: number
  /** How long to wait for the first byte before `idleMs` applies (a loaded machine answers late); default `idleMs`. */
  firstByteMs?: number
  /** Stop reading after this long in all; default 10 s. */
  ms?: number
  /** Called after part `i` was handed to the socket. */
  onWritten?: (i: number) => void
}

export interface Sent {
  /** Everything received, as latin1 (one character a byte). */
  raw: string
  /** Whether the connection was closed (by the server, or by an error) before reading stopped. */
  closed: boolean
  /** The connection's error, if it had one. */
  error?: Error
}

/**
 * Writes `parts` on a fresh connection (strings as UTF-8, as `socket.write` does), in order,
 * `gapMs` apart, and reads until the connection closes, is quiet for `idleMs` or `ms` pass; then
 * cuts it. Never rejects: a connection error ends the reading and is in `error`.
 */
export function send (to: Target, parts: string | Buffer | ReadonlyArray<string | Buffer>, opts: SendOptions = {}): Promise<Sent> {
  const list = typeof parts === 'string' || Buffer.isBuffer(parts) ? [parts] : parts
  return new Promise((resolve) => {
    const sock = connect(to)
    let raw = ''
    let error: Error | undefined
    let done = false
    let idle: NodeJS.Timeout | undefined
    const end = (closed: boolean): void => {
      if (done) return
      done = true
      clearTimeout(idle)
      clearTimeout(bound)
      sock.destroy()
      resolve(error === undefined ? { raw, closed } : { raw, closed, error })
    }
    const bound = setTimeout(() => end(false), opts.ms ?? 10_000)
    const quiet = (): void => {
      if (opts.idleMs === undefined) return
      clearTimeout(idle)
      idle = setTimeout(() => end(false), raw === '' ? Math.max(opts.idleMs, opts.firstByteMs ?? 0) : opts.idleMs)
    }
    sock.on('data', (d: Buffer) => { raw += d.toString('latin1'); quiet() })
    sock.on('error', (e) => { error = e })
    sock.on('close', () => end(true))
    let i = 0
    const next = (): void => {
      while (!done && i < list.length) {
        const part = list[i++] as string | Buffer
        sock.write(part)
        opts.onWritten?.(i - 1)
        if ((opts.gapMs ?? 0) > 0) { setTimeout(next, opts.gapMs); return }
      }
    }
    sock.once('connect', next)
    quiet()
  })
}

/** Writes one request on a fresh connection and parses the first answer (undefined: none came, or `Sent.raw` unparsable). */
export async function firstAnswer (to: Target, bytes: string, ms = 3000): Promise<{ answer: ParsedResponse | undefined, raw: string }> {
  const got = await send(to, bytes, { ms })
  return { answer: splitResponses(got.raw, { final: true }).responses[0], raw: got.raw }
}

/**
 * Writes raw bytes on a fresh connection and collects everything until the server closes or `ms`
 * pass. Rejects only when the connection failed before any byte came back.
 */
export async function rawExchange (to: Target, bytes: string, ms = 2000): Promise<string> {
  const got = await send(to, bytes, { ms })
  if (got.error !== undefined && got.raw === '') throw got.error
  return got.raw
}

/**
 * Sends one request, byte for byte: `METHOD TARGET HTTP/1.1`, the given header lines (Host
 * first unless `host: null`), `Connection: close` (unless a Connection header is given: then it
 * must say close), then `body`. Returns the parsed response.
 */
export async function exchange (to: Target, target: string, opts: { method?: string, host?: string | null, headers?: Array<[string, string]>, body?: string, version?: string, ms?: number } = {}): Promise<ParsedResponse> {
  const method = opts.method ?? 'GET'
  let head = `${method} ${target} ${opts.version ?? 'HTTP/1.1'}\r\n`
  if (opts.host !== null) head += `Host: ${opts.host ?? 'localhost'}\r\n`
  for (const [n, v] of opts.headers ?? []) head += `${n}: ${v}\r\n`
  if (!(opts.headers ?? []).some(([n]) => /^connection$/i.test(n))) head += 'Connection: close\r\n'
  if (opts.body !== undefined && !(opts.headers ?? []).some(([n]) => /^(content-length|transfer-encoding)$/i.test(n))) {
    head += `Content-Length: ${Buffer.byteLength(opts.body, 'latin1')}\r\n`
  }
  const raw = await rawExchange(to, head + '\r\n' + (opts.body ?? ''), opts.ms ?? 5000)
  return parseResponse(raw, method)
}

export interface RawConnection {
  readonly socket: net.Socket
  /** What was received since the connection opened (or since the last `take`), as latin1. */
  readonly received: string
  /** Whether the connection has closed. */
  readonly closed: boolean
  /** Writes now (a string as UTF-8). */
  write (bytes: string | Buffer): void
  /**
   * Resolves true once `done` holds for what was received (checked now and after each read);
   * false if the connection closes or `ms` pass first.
   */
  until (done: RegExp | ((received: string) => boolean), ms?: number): Promise<boolean>
  /** What was received so far, which is then forgotten. */
  take (): string
  /** Stops collecting (the socket's later bytes go only to the test's own listeners). */
  release (): void
}

/** A connection for a conversation: write, wait for an answer, write again. Cut when the test ends. */
export function rawConnection (t: Teardown, to: Target): RawConnection {
  const socket = connect(to)
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  let received = ''
  let closed = false
  const waiting = new Set<() => void>()
  const wake = (): void => { for (const w of [...waiting]) w() }
  const onData = (d: Buffer): void => { received += d.toString('latin1'); wake() }
  socket.on('data', onData)
  socket.on('close', () => { closed = true; wake() })
  return {
    socket,
    get received () { return received },
    get closed () { return closed },
    write (bytes) { socket.write(bytes) },
    until (done, ms = 5000) {
      const holds = typeof done === 'function' ? done : (s: string) => done.test(s)
      return new Promise((resolve) => {
        const check = (): void => {
          if (holds(received)) finish(true)
          else if (closed) finish(false)
        }
        const finish = (ok: boolean): void => { clearTimeout(timer); waiting.delete(check); resolve(ok) }
        const timer = setTimeout(() => finish(false), ms)
        waiting.add(check)
        check()
      })
    },
    take () { const s = received; received = ''; return s },
    release () { socket.off('data', onData) }
  }
}

/**
 * Sends raw requests one after another on one connection, each once the previous response is
 * complete (or the connection closed, or `ms` passed); returns each response's raw text.
 */
export async function inTurn (t: Teardown, to: Target, requests: string[], ms = 2000): Promise<string[]> {
  const c = rawConnection(t, to)
  const out: string[] = []
  try {
    for (const r of requests) {
      c.take()
      c.write(r)
      const method = r.slice(0, r.indexOf(' '))
      await c.until((got) => splitResponses(got, { methods: [method] }).responses.length > 0, ms)
      out.push(c.take())
    }
  } finally { c.socket.destroy() }
  return out
}

/* ------------------------------------------------------------------ responses */

export interface ParsedResponse {
  status: number
  /** The status line and header lines as sent. */
  head: string
  headers: Array<[string, string]>
  /** The body, de-chunked, as latin1 text. */
  body: string
  /** Everything after the header block, as sent (chunk framing included). */
  rawBody: string
  /** The whole response, as received. */
  raw: string
}

/**
 * One response at the start of `raw`, and where it ends: undefined while it is not complete, or
 * when it runs until the connection closes (`untilClose`); undefined altogether without a head.
 */
function readResponse (raw: string, method: string): { response: ParsedResponse, used: number | undefined, untilClose?: true, error?: string } | undefined {
  const end = raw.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const head = raw.slice(0, end)
  const lines = head.split('\r\n')
  const status = Number(/^HTTP\/1\.\d (\d{3})/.exec(lines[0] as string)?.[1] ?? 0)
  const headers: Array<[string, string]> = lines.slice(1).map(h => {
    const c = h.indexOf(':')
    return [h.slice(0, c), h.slice(c + 1).trim()]
  })
  const rawBody = raw.slice(end + 4)
  const response: ParsedResponse = { status, head, headers, body: '', rawBody, raw }
  const noBody = method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)
  if (noBody) return { response, used: end + 4 }
  if (headerValues(headers, 'transfer-encoding').some(v => /chunked/i.test(v))) {
    const { body, used, error } = dechunk(rawBody)
    response.body = body
    return { response, used: used === undefined ? undefined : end + 4 + used, ...(error !== undefined ? { error } : {}) }
  }
  const cl = headerValues(headers, 'content-length')[0]
  if (cl === undefined) {
    response.body = rawBody
    return { response, used: undefined, untilClose: true }
  }
  const n = Number(cl)
  response.body = rawBody.slice(0, n)
  return { response, used: rawBody.length >= n ? end + 4 + n : undefined }
}

/** A chunked body: the data, and where the framing ends (undefined, with `error`, if it does not). */
function dechunk (s: string): { body: string, used?: number, error?: string } {
  let body = ''
  let pos = 0
  for (;;) {
    const eol = s.indexOf('\r\n', pos)
    if (eol === -1) return { body, error: `bad chunked body ${JSON.stringify(s)}` }
    const size = parseInt(s.slice(pos, eol), 16)
    if (Number.isNaN(size)) return { body, error: `bad chunk size in ${JSON.stringify(s)}` }
    if (size === 0) {
      const trailersEnd = s.indexOf('\r\n\r\n', eol)
      return trailersEnd === -1 ? { body, error: `no end of trailers in ${JSON.stringify(s)}` } : { body, used: trailersEnd + 4 }
    }
    body += s.slice(eol + 2, eol + 2 + size)
    if (s.slice(eol + 2 + size, eol + 4 + size) !== '\r\n') return { body, error: `bad chunk end in ${JSON.stringify(s)}` }
    pos = eol + 4 + size
  }
}

/**
 * Parses one raw response (`method` says whether a body may follow); 1xx heads before it are
 * skipped. Throws on a missing head or broken chunked framing, unless `lenient`: then a missing
 * head is status 0 and a chunked body is what its framing held.
 */
export function parseResponse (raw: string | Buffer, method = 'GET', opts: { lenient?: boolean } = {}): ParsedResponse {
  let text = typeof raw === 'string' ? raw : raw.toString('latin1')
  while (/^HTTP\/1\.\d 1\d\d /.test(text)) text = text.slice(text.indexOf('\r\n\r\n') + 4)
  const one = readResponse(text, method)
  if (one === undefined) {
    if (opts.lenient === true) return { status: 0, head: '', headers: [], body: '', rawBody: '', raw: text }
    throw new Error(`no complete response head in ${JSON.stringify(text)}`)
  }
  if (one.error !== undefined && opts.lenient !== true) throw new Error(one.error)
  return one.response
}

/**
 * The complete responses at the start of `raw`, in order, each with `raw` and `rawBody` cut to
 * its own bytes; a 101 is the last one (what follows it is not HTTP). `methods[i]` is the method
 * of the i-th request (GET by default). With `final` (all the bytes there will be), a response
 * that runs until close ends with them. `rest`: the bytes after them.
 */
export function splitResponses (raw: string, opts: { methods?: readonly string[], final?: boolean } = {}): { responses: ParsedResponse[], rest: string } {
  const responses: ParsedResponse[] = []
  let rest = raw
  while (rest.length > 0) {
    const one = readResponse(rest, opts.methods?.[responses.length] ?? 'GET')
    if (one === undefined) break
    const { response } = one
    const used = one.used ?? (one.untilClose === true && opts.final === true ? rest.length : undefined)
    if (used === undefined) break
    response.raw = rest.slice(0, used)
    response.rawBody = response.raw.slice(response.head.length + 4)
    responses.push(response)
    rest = rest.slice(used)
    if (response.status === 101) break
  }
  return { responses, rest }
}
