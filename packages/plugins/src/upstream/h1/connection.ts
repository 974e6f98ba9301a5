import net from 'node:net'
import { H1Error } from './errors.js'
import { takeReadBuffer, type ReadBuffer } from './read-buffers.js'
import { Framing, parseResponseHead } from './response-head.js'

/** Where a connection goes: TCP host and port, or a unix socket path. */
export type H1Target = { host: string, port: number } | { path: string }

/** A request without a body, or with one held whole in memory (streamed bodies go through undici). */
export interface H1Request {
  method: string
  path: string
  /** name, value, ... Any `host` header is sent first, as undici does. */
  headers: string[]
  /** Sent with its length, in the same write as the head (the pieces as read: no copy to join them). */
  body?: readonly Buffer[]
}

/**
 * What the client calls, in this order, as undici's dispatch handler does (proxy's Attempt is
 * one): onConnect once the request is about to be written; onHeaders; onData per body piece;
 * onComplete; or onError, once, at any point.
 */
export interface H1Handler {
  onConnect (abort: (err?: Error) => void): void
  /** Return false to pause until `resume` is called. */
  onHeaders (status: number, rawHeaders: string[], resume: () => void, statusText: string): boolean
  /** `chunk` is a view of a reused read buffer: call `written` once nothing refers to it any more
   * (a write callback). Return false to pause until `resume`. */
  onData (chunk: Buffer, written: () => void): boolean
  onComplete (trailers: string[] | null): void
  /** `cachedConnection`: the connection had carried an earlier exchange and failed before this
   * response's head was complete (nginx's `u->peer.cached` failure, which earns one more try). */
  onError (err: Error, cachedConnection?: boolean): void
}

export interface ConnectionOwner {
  /** The exchange ended and the connection can carry another request. */
  released (conn: H1Connection): void
  /** The connection closed (for whatever reason); forget it. */
  closed (conn: H1Connection): void
}

export interface ConnectionOptions {
  connectTimeout: number
  /** Longest a head may be, in bytes (undici's and Node's default: 16 KiB). */
  maxHeaderSize: number
  /** Sent as `host` when the request has none. */
  defaultHost: string
}

const enum Phase { Idle, Head, Body, Closed }
const enum Chunk { Size, Data, DataEnd, Trailer }

const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const PATH = /[^\x21-\xff]/
const HEADER_NAME = METHOD
const HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/
/** Methods whose bodiless requests carry `content-length: 0` (undici's rule, RFC 9110 §8.6). */
const EXPECTS_PAYLOAD = new Set(['PUT', 'POST', 'PATCH', 'QUERY', 'PROPFIND', 'PROPPATCH'])

/**
 * One keep-alive connection to an upstream, one exchange at a time (no pipelining, as nginx).
 * The socket reads into reused buffers (read-buffers.ts) and response body pieces are views of
 * them, handed to the handler without a copy.
 */
export class H1Connection {
  private readonly socket: net.Socket
  /** The buffer the socket reads into next (set by nextBuffer from inside net.connect). */
  private rb!: ReadBuffer
  private handler: H1Handler | null = null
  /** The request head to write once connected. */
  private head = ''
  /** The request body to write with the head. */
  private body: readonly Buffer[] | undefined
  private phase = Phase.Idle
  private connected = false
  private connectTimer: NodeJS.Timeout | undefined
  private error: Error | undefined
  /** Head bytes of a head split across reads. */
  private headPart: Buffer | null = null
  private method = ''
  private framing = Framing.None
  private remaining = 0
  private chunk = Chunk.Size
  /** A chunk-size or trailer line split across reads. */
  private linePart = ''
  private keepAlive = false
  private reuse = true
  private paused = false
  /** Bytes of a read not yet handed over when the handler paused. */
  private pending: ReadBuffer | null = null
  private pendingStart = 0
  private pendingEnd = 0
  /** Expiry of an idle connection (performance.now() ms); set by the owner. */
  idleUntil = 0
  keepAliveHint = 0
  private readonly resumeFn = (): void => { this.resume() }
  /** Exchanges sent on this connection, this one included. */
  private exchanges = 0

  constructor (target: H1Target, private readonly owner: ConnectionOwner, private readonly options: ConnectionOptions) {
    this.socket = net.connect({
      ...target,
      noDelay: true,
      onread: {
        buffer: () => this.nextBuffer(),
        callback: (n: number) => this.onRead(n)
      }
    })
    this.socket.on('connect', () => this.onSocketConnect())
    this.socket.on('end', () => this.onEnd())
    this.socket.on('error', (err) => { this.error ??= err })
    this.socket.on('close', () => this.onClose())
    if (options.connectTimeout > 0) {
      this.connectTimer = setTimeout(() => {
        this.socket.destroy(new H1Error('PROXYCTL_H1_CONNECT_TIMEOUT', 'upstream timed out while connecting'))
      }, options.connectTimeout).unref()
    }
  }

  get idle (): boolean { return this.phase === Phase.Idle && this.handler === null }

  /** Sends `request` and reports to `handler`. The connection must be idle. */
  dispatch (request: H1Request, handler: H1Handler): void {
    const head = requestHead(request, this.options.defaultHost)
    if (head instanceof H1Error) {
      // Nothing was written: the connection stays as it was.
      this.owner.released(this)
      handler.onError(head)
      return
    }
    this.handler = handler
    this.method = request.method
    this.head = head
    this.body = request.body
    // A request that asked for `connection: close` ends the connection after its response.
    this.reuse = !head.includes('\r\nconnection: close\r\n')
    if (this.connected) this.send()
  }

  close (): void {
    this.socket.destroy()
  }

  private onSocketConnect (): void {
    this.connected = true
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer)
    if (this.handler !== null) this.send()
  }

  private send (): void {
    const handler = this.handler as H1Handler
    this.phase = Phase.Head
    this.keepAlive = false
    this.exchanges++
    handler.onConnect((err?: Error) => { if (this.handler === handler) this.abort(err) })
    if (this.handler !== handler) return // aborted in onConnect
    const body = this.body
    if (body === undefined) {
      this.socket.write(this.head, 'latin1')
    } else {
      // One writev: the head and the body leave in one packet train, as a buffered body is meant to.
      this.socket.cork()
      this.socket.write(this.head, 'latin1')
      for (const piece of body) this.socket.write(piece)
      this.socket.uncork()
      this.body = undefined
    }
    this.head = ''
  }

  private abort (err?: Error): void {
    const handler = this.handler as H1Handler
    this.handler = null
    this.phase = Phase.Closed
    this.socket.destroy()
    handler.onError(err ?? new H1Error('PROXYCTL_H1_ABORTED', 'request aborted'))
  }

  /** Node calls it when it creates the handle (inside net.connect) and right after every read. */
  private nextBuffer (): Buffer {
    this.rb = takeReadBuffer(this.phase === Phase.Body)
    return this.rb.buf
  }

  /** The socket read `n` bytes into `this.rb`. Returns false to stop reading (paused). */
  private onRead (n: number): boolean {
    const rb = this.rb
    if (this.handler === null || this.phase === Phase.Idle) {
      // Bytes nobody asked for (an idle connection, or after an abort): the connection is unusable.
      rb.unref()
      this.phase = Phase.Closed
      this.socket.destroy()
      return false
    }
    this.feed(rb, 0, n)
    if (this.paused) return false
    rb.unref()
    return true
  }

  /** Parses and hands over bytes [start, end) of `rb`, until they run out or the handler pauses. */
  private feed (rb: ReadBuffer, start: number, end: number): void {
    const buf = rb.buf
    let pos = start
    while (pos < end || (this.phase === Phase.Body && this.framing === Framing.Length && this.remaining === 0)) {
      const handler = this.handler
      if (handler === null) break
      if (this.phase === Phase.Head) {
        pos = this.readHead(buf, pos, end)
        if (pos < 0) return // head incomplete, or failed
      } else if (this.phase === Phase.Body) {
        if (this.framing === Framing.Chunked) {
          pos = this.readChunked(rb, pos, end)
          if (pos < 0) return
        } else {
          const take = this.framing === Framing.Length ? Math.min(this.remaining, end - pos) : end - pos
          if (take > 0) {
            this.remaining -= take
            pos += take
            if (!this.deliver(rb, pos - take, pos)) { this.pauseAt(rb, pos, end); return }
          }
          if (this.framing === Framing.Length && this.remaining === 0) this.complete(pos < end)
        }
      } else break
    }
  }

  /** Returns where the body starts, or -1. */
  private readHead (buf: Buffer, pos: number, end: number): number {
    let text: string
    let bodyStart: number
    /** The whole head's length, blank line included, over every read it came in. */
    let headBytes: number
    const part = this.headPart
    if (part === null) {
      const e = headEnd(buf, pos, end)
      if (e === -1) { this.keepHeadPart(buf.subarray(pos, end)); return -1 }
      text = buf.toString('latin1', pos, e)
      bodyStart = e + (buf[e] === 13 ? 4 : 2)
      headBytes = bodyStart - pos
    } else {
      const joined = Buffer.concat([part, buf.subarray(pos, end)])
      const e = headEnd(joined, 0, joined.length)
      if (e === -1) { this.keepHeadPart(joined); return -1 }
      this.headPart = null
      text = joined.toString('latin1', 0, e)
      headBytes = e + (joined[e] === 13 ? 4 : 2)
      bodyStart = pos + headBytes - part.length
    }
    if (headBytes > this.options.maxHeaderSize) { this.fail(new H1Error('PROXYCTL_H1_HEADERS_OVERFLOW', 'upstream sent too big header')); return -1 }
    let head
    try {
      head = parseResponseHead(text, this.method)
    } catch (err) {
      this.fail(err as Error)
      return -1
    }
    if (head.status < 200) {
      // 1xx: informational; the real answer follows. 101 we never asked for.
      if (head.status === 101) { this.fail(new H1Error('PROXYCTL_H1_BAD_RESPONSE', 'unexpected 101')); return -1 }
      return bodyStart
    }
    this.framing = head.framing
    this.remaining = head.length
    this.chunk = Chunk.Size
    this.linePart = ''
    this.keepAlive = head.keepAlive && this.reuse
    this.keepAliveHint = head.keepAliveHint
    this.phase = Phase.Body
    const handler = this.handler as H1Handler
    const more = handler.onHeaders(head.status, head.rawHeaders, this.resumeFn, head.statusText)
    if (this.handler !== handler) return -1 // aborted from onHeaders
    if (head.framing === Framing.None) { this.complete(bodyStart < end); return -1 }
    // Only ever called from onRead, so the bytes are in this.rb.
    if (!more) { this.pauseAt(this.rb, bodyStart, end); return -1 }
    return bodyStart
  }

  private keepHeadPart (bytes: Buffer): void {
    if (bytes.length > this.options.maxHeaderSize) { this.fail(new H1Error('PROXYCTL_H1_HEADERS_OVERFLOW', 'upstream sent too big header')); return }
    // A copy: the read buffer is reused.
    this.headPart = Buffer.from(bytes)
  }

  /** Chunked body (RFC 9112 §7.1): returns the position after what was consumed, or -1. */
  private readChunked (rb: ReadBuffer, pos: number, end: number): number {
    const buf = rb.buf
    while (pos < end) {
      if (this.chunk === Chunk.Data) {
        const take = Math.min(this.remaining, end - pos)
        this.remaining -= take
        pos += take
        if (this.remaining === 0) this.chunk = Chunk.DataEnd
        if (!this.deliver(rb, pos - take, pos)) { this.pauseAt(rb, pos, end); return -1 }
        continue
      }
      const nl = buf.indexOf(10, pos)
      if (nl === -1 || nl >= end) {
        this.linePart += buf.toString('latin1', pos, end)
        if (this.linePart.length > 4096) { this.fail(new H1Error('PROXYCTL_H1_BAD_RESPONSE', 'invalid chunked response: line too long')); return -1 }
        return end
      }
      let line = this.linePart + buf.toString('latin1', pos, nl)
      this.linePart = ''
      pos = nl + 1
      if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1)
      if (this.chunk === Chunk.Size) {
        const semi = line.indexOf(';')
        const hex = (semi === -1 ? line : line.slice(0, semi)).trim()
        if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) { this.fail(new H1Error('PROXYCTL_H1_BAD_RESPONSE', `invalid chunked response: chunk size "${hex.slice(0, 16)}"`)); return -1 }
        this.remaining = parseInt(hex, 16)
        this.chunk = this.remaining === 0 ? Chunk.Trailer : Chunk.Data
      } else if (this.chunk === Chunk.DataEnd) {
        if (line !== '') { this.fail(new H1Error('PROXYCTL_H1_BAD_RESPONSE', 'invalid chunked response: no CRLF after chunk data')); return -1 }
        this.chunk = Chunk.Size
      } else if (line === '') {
        // The last chunk and its (ignored) trailer section are done.
        this.complete(pos < end)
        return -1
      }
    }
    return pos
  }

  /** Hands one body piece over; false when the handler asks to pause. */
  private deliver (rb: ReadBuffer, start: number, end: number): boolean {
    rb.refs++
    return (this.handler as H1Handler).onData(rb.buf.subarray(start, end), rb.unref)
  }

  /**
   * Paused by the handler: keep the unread rest of this read. The pending bytes hold the read's
   * reference to their buffer (onRead does not drop it) until resume hands them over.
   */
  private pauseAt (rb: ReadBuffer, start: number, end: number): void {
    this.paused = true
    this.pending = rb
    this.pendingStart = start
    this.pendingEnd = end
  }

  private resume (): void {
    if (!this.paused || this.handler === null) return
    this.paused = false
    const rb = this.pending as ReadBuffer
    this.pending = null
    this.feed(rb, this.pendingStart, this.pendingEnd)
    if (this.paused) return // paused again: the new pending bytes keep the reference
    rb.unref()
    // Reading again also when the exchange just completed: the next one, or the upstream's close
    // of an idle connection, is read from here.
    if (this.phase !== Phase.Closed) this.socket.resume()
  }

  /** The response is complete; `extra`: bytes followed it in the same read. */
  private complete (extra: boolean): void {
    const handler = this.handler as H1Handler
    this.handler = null
    if (!this.keepAlive || extra) {
      this.phase = Phase.Closed
      this.socket.destroy()
    } else {
      this.phase = Phase.Idle
      this.owner.released(this)
    }
    handler.onComplete(null)
  }

  private fail (err: Error): void {
    const handler = this.handler
    this.handler = null
    this.phase = Phase.Closed
    this.socket.destroy()
    handler?.onError(err)
  }

  private onEnd (): void {
    // While paused the socket does not read, so no end arrives then.
    if (this.handler !== null && this.phase === Phase.Body && this.framing === Framing.UntilClose) {
      this.complete(false)
      return
    }
    this.socket.destroy()
  }

  private onClose (): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer)
    const cached = this.exchanges > 1 && this.phase === Phase.Head
    this.phase = Phase.Closed
    this.rb.unref()
    this.owner.closed(this)
    const handler = this.handler
    if (handler === null) return
    this.handler = null
    handler.onError(this.error ?? new H1Error('PROXYCTL_H1_CLOSED', 'upstream prematurely closed connection'), cached)
  }
}

/** Index of the blank line ending a head in [from, to) (at its first CR or LF), or -1. */
function headEnd (buf: Buffer, from: number, to: number): number {
  const crlf = buf.indexOf('\r\n\r\n', from, 'latin1')
  if (crlf !== -1 && crlf + 4 <= to) return crlf
  const lf = buf.indexOf('\n\n', from, 'latin1')
  if (lf !== -1 && lf + 2 <= to && (crlf === -1 || lf < crlf)) return lf
  return -1
}

/**
 * The request head as undici writes it (request line, host, connection, the headers, then
 * content-length), with undici's checks: a header undici refuses is refused here too, since the
 * proxy must not frame a request differently from what it declares.
 */
export function requestHead (r: H1Request, defaultHost: string): string | H1Error {
  if (!METHOD.test(r.method)) return invalid('invalid request method')
  if (r.path[0] !== '/' && !(r.path === '*' && r.method === 'OPTIONS')) return invalid('path must start with a slash')
  if (PATH.test(r.path)) return invalid('invalid request path')
  let host: string | undefined
  let connection = 'keep-alive'
  let rest = ''
  const h = r.headers
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]
    const value = h[i + 1]
    if (!HEADER_NAME.test(name)) return invalid(`invalid header name "${name}"`)
    if (HEADER_VALUE.test(value)) return invalid(`invalid ${name} header`)
    switch (name.length) {
      case 4:
        if (host === undefined && name.toLowerCase() === 'host') { host = value; continue }
        break
      case 6:
        if (name.toLowerCase() === 'expect') return invalid('expect header not supported')
        break
      case 7:
        if (name.toLowerCase() === 'upgrade') return invalid('invalid upgrade header')
        break
      case 10: {
        const lower = name.toLowerCase()
        if (lower === 'keep-alive') return invalid('invalid keep-alive header')
        if (lower === 'connection') {
          const v = value.toLowerCase()
          if (v !== 'close' && v !== 'keep-alive') return invalid('invalid connection header')
          connection = v
          continue
        }
        break
      }
      case 14:
        // The length is ours to state: none, or 0 where the method expects a body.
        if (name.toLowerCase() === 'content-length') continue
        break
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') return invalid('invalid transfer-encoding header')
        break
    }
    rest += `${name}: ${value}\r\n`
  }
  const length = r.body !== undefined ? `content-length: ${byteLength(r.body)}\r\n` : EXPECTS_PAYLOAD.has(r.method) ? 'content-length: 0\r\n' : ''
  return `${r.method} ${r.path} HTTP/1.1\r\nhost: ${host ?? defaultHost}\r\nconnection: ${connection}\r\n${rest}${length}\r\n`
}

function byteLength (pieces: readonly Buffer[]): number {
  let n = 0
  for (const p of pieces) n += p.length
  return n
}

function invalid (message: string): H1Error {
  return new H1Error('PROXYCTL_H1_INVALID_REQUEST', message)
}
