/**
 * HTTP/2 beside HTTP/1.1 on one listener (nginx's `listen ... http2`). The HTTP/1.1 server stays
 * the listener's own, untouched; connections that speak h2 (ALPN `h2` on TLS, the HTTP/2 preface
 * on a plain port) are handed to an Http2Server that never listens itself, and its requests go
 * to the same entry as HTTP/1.1 requests (listeners.ts `onRequest`), through Node's compatibility
 * API. What HTTP/2 changes is made to look like HTTP/1.1 here, once per request, so routing,
 * Fastify, plugins and proxy() do not branch on it:
 * - the request's headers lose the pseudo-headers, `:authority` becomes Host when there is none,
 *   and a body without Content-Length reads as chunked (as nginx reads such a body);
 * - response headers HTTP/2 forbids (Connection, Keep-Alive, ...) are dropped, as nginx's HTTP/2
 *   module drops them, instead of Node throwing;
 * - `req.socket` keeps what code stores on it per stream (a connection carries many), and
 *   closing "the connection" after an answer closes the stream.
 */
import http2 from 'node:http2'
import type http from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type net from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import type { ResolvedListen } from '../config/model.js'

/** Response headers HTTP/2 forbids (RFC 9113 8.2.2); nginx's HTTP/2 module leaves them out. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'])

/** nginx's http2_max_concurrent_streams default. */
export const MAX_CONCURRENT_STREAMS = 128

/**
 * Streams a client may cancel within one second before its connection is cut (rapid reset,
 * CVE-2023-44487): twice the streams it may have open. nghttp2's own limit only sends GOAWAY
 * and leaves the connection open.
 */
export const MAX_RESETS_PER_SECOND = 2 * MAX_CONCURRENT_STREAMS

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

const kHeaders = Symbol('proxyctl.h2.headers')
const kRawHeaders = Symbol('proxyctl.h2.rawHeaders')
const kSocket = Symbol('proxyctl.h2.socket')

type Stream = http2.ServerHttp2Stream & Record<symbol, unknown>

/**
 * Each session's connection socket. `session.socket` is Node's stand-in, which throws once the
 * session has let the socket go (in its 'close' listeners too), so the connection's bytes and
 * unsent data are read from the socket itself.
 */
const connectionSockets = new WeakMap<http2.Http2Session, net.Socket>()

/** The socket of an HTTP/2 request's connection; undefined once its session is gone. */
export function connectionSocketOf (session: http2.Http2Session | undefined): net.Socket | undefined {
  return session === undefined ? undefined : connectionSockets.get(session)
}

/** The HTTP/2 request as HTTP/1.1 code reads one (see the module comment). */
export class H2Request extends http2.Http2ServerRequest {
  [kHeaders]: IncomingHttpHeaders
  [kRawHeaders]: string[]
  [kSocket]: net.Socket | undefined

  constructor (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, options: object, rawHeaders: readonly string[]) {
    super(stream, headers, options, rawHeaders)
    const h: IncomingHttpHeaders = {}
    for (const name in headers) if (name.charCodeAt(0) !== 0x3a) h[name] = headers[name] as string
    const raw: string[] = []
    let cookie = -1
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as string
      if (name.charCodeAt(0) === 0x3a) continue
      // HTTP/2 may split Cookie into several fields; HTTP/1.1 has one line (RFC 9113 8.2.3), as nginx sends it.
      if (name === 'cookie') {
        if (cookie >= 0) { raw[cookie + 1] += '; ' + (rawHeaders[i + 1] as string); continue }
        cookie = raw.length
      }
      raw.push(name, rawHeaders[i + 1] as string)
    }
    const authority = headers[':authority']
    if (h.host === undefined && typeof authority === 'string') { h.host = authority; raw.push('host', authority) }
    if (!stream.endAfterHeaders && h['content-length'] === undefined) {
      h['transfer-encoding'] = 'chunked'
      raw.push('transfer-encoding', 'chunked')
    }
    this[kHeaders] = h
    this[kRawHeaders] = raw
    this[kSocket] = undefined
  }
}

const nodeSocket = Object.getOwnPropertyDescriptor(http2.Http2ServerRequest.prototype, 'socket')?.get as (this: H2Request) => net.Socket

Object.defineProperties(H2Request.prototype, {
  headers: { get (this: H2Request) { return this[kHeaders] }, configurable: true },
  rawHeaders: { get (this: H2Request) { return this[kRawHeaders] }, configurable: true },
  socket: {
    get (this: H2Request) { return this[kSocket] ??= streamSocket(this.stream as Stream, nodeSocket.call(this)) },
    configurable: true
  },
  connection: { get (this: H2Request) { return this.socket }, configurable: true }
})

/**
 * Node's socket stand-in for a stream reads and writes everything on the connection's socket;
 * this one keeps symbol-keyed fields on the stream (proxy() ties an exchange to its client that
 * way) and makes `destroySoon` close the stream only.
 */
function streamSocket (stream: Stream, node: net.Socket): net.Socket {
  const closeStream = (): void => { if (!stream.closed) stream.close() }
  return new Proxy(stream, {
    get (target, prop) {
      if (typeof prop === 'symbol') return target[prop]
      if (prop === 'destroySoon') return closeStream
      return Reflect.get(node, prop)
    },
    set (target, prop, value) {
      if (typeof prop === 'symbol') { target[prop] = value; return true }
      return Reflect.set(node, prop, value)
    },
    has (target, prop) { return typeof prop === 'symbol' ? prop in target : Reflect.has(node, prop) },
    getPrototypeOf () { return Reflect.getPrototypeOf(node) }
  }) as unknown as net.Socket
}

/** Drops what HTTP/2 forbids from a head: a flat list, a list of pairs, or an object. */
function allowedHeaders<T> (headers: T): T {
  if (headers === undefined || headers === null) return headers
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      return (headers as Array<[string, unknown]>).filter(([name]) => !CONNECTION_SPECIFIC.has(String(name).toLowerCase())) as T
    }
    let kept: unknown[] | undefined
    for (let i = 0; i < headers.length; i += 2) {
      if (CONNECTION_SPECIFIC.has(String(headers[i]).toLowerCase())) kept ??= headers.slice(0, i)
      else kept?.push(headers[i], headers[i + 1])
    }
    return (kept ?? headers) as T
  }
  if (typeof headers === 'object') {
    let kept: Record<string, unknown> | undefined
    for (const name of Object.keys(headers)) {
      if (CONNECTION_SPECIFIC.has(name.toLowerCase())) kept ??= { ...headers as Record<string, unknown> }
    }
    if (kept !== undefined) for (const name of Object.keys(kept)) if (CONNECTION_SPECIFIC.has(name.toLowerCase())) delete kept[name]
    return (kept ?? headers) as T
  }
  return headers
}

/** The HTTP/2 response: connection-specific headers dropped, the status line's phrase ignored (HTTP/2 has none). */
export class H2Response extends http2.Http2ServerResponse {
  /** Body bytes written (the access log's $body_bytes_sent: the connection's byte count is every stream's). */
  bodyBytes = 0

  override write (chunk: string | Uint8Array, encoding?: BufferEncoding | ((err: Error) => void), cb?: (err: Error) => void): boolean {
    this.bodyBytes += typeof chunk === 'string' ? Buffer.byteLength(chunk, typeof encoding === 'string' ? encoding : 'utf8') : chunk.byteLength
    return super.write(chunk, encoding as BufferEncoding, cb)
  }

  override setHeader (name: string, value: number | string | readonly string[]): this {
    if (CONNECTION_SPECIFIC.has(name.toLowerCase())) return this
    return super.setHeader(name, value) as unknown as this
  }

  override appendHeader (name: string, value: string | string[]): this {
    if (CONNECTION_SPECIFIC.has(name.toLowerCase())) return this
    return super.appendHeader(name, value) as unknown as this
  }

  override writeHead (status: number, reason?: unknown, headers?: unknown): this {
    const h = typeof reason === 'string' ? headers : reason
    return super.writeHead(status, allowedHeaders(h) as http.OutgoingHttpHeaders) as unknown as this
  }
}

/**
 * Node's response sends every head with `waitForTrailers`: the stream then ends with trailers
 * sent from a setImmediate, which for an answer without trailers is one more empty DATA frame
 * with END_STREAM, one more TLS record, a JS round trip and a loop turn per stream (bench/README.md,
 * HTTP/2). proxyctl sends trailers only when the head announces them (`Trailer`, as Fastify's
 * `reply.trailer()` does; RFC 9110 6.6.2); otherwise the last DATA frame carries END_STREAM, as
 * nginx sends it. Node names the method by a private symbol: found by its description, and left
 * alone (Node's behaviour) where a Node version has none.
 */
const kBeginSend = Object.getOwnPropertySymbols(http2.Http2ServerResponse.prototype).find((s) => s.description === 'begin-send')
if (kBeginSend !== undefined) {
  Object.defineProperty(H2Response.prototype, kBeginSend, {
    value: function beginSend (this: H2Response): void {
      const headers = this.getHeaders() as http2.OutgoingHttpHeaders
      headers[':status'] = this.statusCode
      this.stream.respond(headers, { endStream: this.writableEnded, waitForTrailers: headers.trailer !== undefined, sendDate: this.sendDate } as http2.ServerStreamResponseOptions)
    },
    configurable: true,
    writable: true
  })
}

export type RequestEntry = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => void

/** The HTTP/2 side of one listener. */
export interface Http2Front {
  /** GOAWAY to every session: no new streams, the open ones finish (graceful stop). */
  close (): void
  /** Cuts every session (the grace period is over). */
  destroy (): void
}

/**
 * Routes h2 connections of `server` (an http or https server, not listening yet) to an
 * Http2Server whose requests go to `entry`. Limits are nginx's: 128 concurrent streams, a header
 * list as large as large_client_header_buffers could hold, keepalive_timeout once a connection
 * has no stream, keepalive_requests streams per connection (then GOAWAY). Node's flood
 * protections (rapid reset, CONTINUATION flood, invalid frames) stay on; what they close is
 * logged with the client's address.
 */
export function attachHttp2 (server: net.Server, listen: ResolvedListen, entry: RequestEntry, log: FastifyBaseLogger): Http2Front {
  const limits = listen.defaultServer.limits
  const { number, size } = limits.largeClientHeaderBuffers
  const h2 = http2.createServer({
    Http2ServerRequest: H2Request,
    Http2ServerResponse: H2Response,
    // Node counts the pseudo-headers too; request-head.ts refuses too many lines as nginx words it.
    maxHeaderListPairs: limits.maxHeaders + 8,
    settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: 1024 + number * size }
  } as http2.ServerOptions)
  const sessions = new Set<http2.ServerHttp2Session>()
  // The socket handed to h2 below: Node makes its session and emits 'session' synchronously.
  let connecting: net.Socket | undefined
  const toH2 = (socket: net.Socket): void => {
    connecting = socket
    try { h2.emit('connection', socket) } finally { connecting = undefined }
  }
  h2.on('request', (req, res) => { entry(req as unknown as IncomingMessage, res as unknown as ServerResponse, false) })
  h2.on('checkContinue', (req, res) => { entry(req as unknown as IncomingMessage, res as unknown as ServerResponse, true) })
  h2.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session)
    if (connecting !== undefined) connectionSockets.set(session, connecting)
    const client = session.socket?.remoteAddress
    let streams = 0
    let served = 0
    const idle = (): void => { session.setTimeout(limits.keepaliveTimeout) }
    session.on('timeout', () => { session.close() })
    if (limits.keepaliveTimeout > 0) idle()
    let resets = 0
    let resetsSince = 0
    let cut = false
    const onReset = (): void => {
      const now = Date.now()
      if (now - resetsSince >= 1000) { resetsSince = now; resets = 0 }
      if (++resets <= MAX_RESETS_PER_SECOND || session.destroyed) return
      log.info({ code: 'PROXYCTL_H2_SESSION_ERROR', client, limit: 'resetsPerSecond', resetsPerSecond: MAX_RESETS_PER_SECOND },
        `http2 client reset more than ${MAX_RESETS_PER_SECOND} streams in a second (rapid reset), closing the connection, client: ${client ?? '-'}`)
      cut = true
      // A number: GOAWAY with that code (Node's `destroy(undefined, code)` sends NO_ERROR).
      session.destroy(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM as unknown as Error)
    }
    session.on('stream', (stream) => {
      if (streams++ === 0) session.setTimeout(0)
      if (++served >= limits.keepaliveRequests) session.close()
      stream.once('close', () => {
        // A stream cancelled (RST_STREAM with an error code) counts toward the rapid-reset limit.
        if (stream.rstCode !== 0) onReset()
        if (--streams === 0 && limits.keepaliveTimeout > 0 && !session.closed) idle()
      })
    })
    session.once('close', () => { sessions.delete(session) })
    session.on('error', (err: NodeJS.ErrnoException) => {
      if (cut) return // said above
      log.info({ code: 'PROXYCTL_H2_SESSION_ERROR', client, limit: 'protocol', reason: err.code ?? err.message },
        `http2 connection closed: ${err.message}, client: ${client ?? '-'}`)
    })
  })
  h2.on('sessionError', () => {}) // logged per session above
  h2.on('streamError', () => {})

  if (listen.tls !== undefined) {
    // ALPN picked h2: the TLS connection goes to the HTTP/2 server instead of HTTP/1.1's listener.
    const h1 = server.listeners('secureConnection') as Array<(s: net.Socket) => void>
    server.removeAllListeners('secureConnection')
    server.on('secureConnection', (socket: net.Socket & { alpnProtocol?: string | false }) => {
      if (socket.alpnProtocol === 'h2') toH2(socket)
      else for (const l of h1) l.call(server, socket)
    })
  } else {
    // Prior-knowledge h2c: a connection whose first bytes are the HTTP/2 preface.
    const h1 = server.listeners('connection') as Array<(s: net.Socket) => void>
    server.removeAllListeners('connection')
    server.on('connection', (socket: net.Socket) => {
      socket.once('data', (chunk: Buffer) => {
        socket.pause()
        socket.unshift(chunk)
        const n = Math.min(chunk.length, PREFACE.length)
        // The session reads what is buffered itself; HTTP/1.1's parser wants the socket flowing again.
        if (chunk.subarray(0, n).equals(PREFACE.subarray(0, n))) { toH2(socket); return }
        for (const l of h1) l.call(server, socket)
        socket.resume()
      })
    })
  }
  return {
    close () { for (const s of sessions) s.close() },
    destroy () { for (const s of sessions) s.destroy() }
  }
}

/** The TLS options that offer h2 first, then HTTP/1.1 (nginx's order). */
export const H2_ALPN = ['h2', 'http/1.1']

// HTTP/2 has no reason phrase: what a handler sets for HTTP/1.1's status line is dropped here
// (Node's own setter warns on every process's first use).
Object.defineProperty(H2Response.prototype, 'statusMessage', { get () { return '' }, set () {}, configurable: true })
