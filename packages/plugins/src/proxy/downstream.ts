import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Transform } from 'node:stream'
import { Spool, type SpoolLimits, type SpoolSink } from './spool.js'

/**
 * The client's side of an exchange: where the upstream's answer goes. Legs write through this
 * one interface whatever the client speaks; today that is HTTP/1 through Node's response
 * (ResponseDownstream, which also buffers: spool.ts); an HTTP/2 stream is another
 * implementation, not a second copy of the legs.
 */
export interface Downstream {
  /** Sends the status and headers (a flat list: name, value, ...); `reason`: the status line's phrase (the upstream's, as nginx passes it). */
  head (status: number, headers: string[], reason?: string): void
  /** Writes a body piece; false when the client is not keeping up (wait for `onceDrained`). `written`: the bytes were taken. */
  write (chunk: Buffer, written?: () => void): boolean
  /** Calls `fn` once, when the client has taken what was queued. */
  onceDrained (fn: () => void): void
  end (): void
  /**
   * Before `head`: spool the body when the client falls behind, within `limits` (nginx's
   * proxy_buffering), so the upstream is not held back by a slow client; null: do not.
   */
  buffer (limits: SpoolLimits | null): void
}

/** Who hears that the temp file of a buffered response failed (the response was cut). */
export interface SpoolOwner {
  spoolFailed (err: NodeJS.ErrnoException, path: string): void
}

/**
 * HTTP/1 through Node's ServerResponse. Body pieces after the first go straight to the client
 * socket when nothing re-frames them: ServerResponse#write corks the socket and uncorks it on
 * the next tick for every piece (the cost: bench/README.md, "Writing to the client socket").
 * Only when the response owns the socket (not queued behind a pipelined one), has a body and is
 * not chunk-encoded by Node (the upstream gave a Content-Length, or an HTTP/1.0 client reads
 * until close). `end()` still ends the response: with a Content-Length it adds no bytes.
 *
 * With buffering (`buffer(limits)`), a piece the client's socket cannot take at once is the last
 * one written directly: the rest go through a Spool, which feeds the socket as it drains and
 * holds the upstream back only when its memory and temp file are full. While the client keeps up
 * nothing changes: one null check per piece.
 */
export class ResponseDownstream implements Downstream, SpoolSink {
  private direct = false
  private sink: Socket | null = null
  private limits: SpoolLimits | null = null
  /** Made when the client first falls behind with buffering on; then every piece goes through it. */
  private spool: Spool | null = null

  constructor (private readonly res: ServerResponse, private readonly owner?: SpoolOwner) {}

  buffer (limits: SpoolLimits | null): void {
    this.limits = limits
  }

  head (status: number, headers: string[], reason?: string): void {
    const res = this.res
    if (reason === undefined || reason === '') res.writeHead(status, headers)
    else res.writeHead(status, reason, headers)
    const socket = res.socket as (Socket & { _httpMessage?: unknown }) | null
    this.direct = socket !== null && socket._httpMessage === res && !res.chunkedEncoding &&
      (res as unknown as { _hasBody: boolean })._hasBody
  }

  write (chunk: Buffer, written?: () => void): boolean {
    const spool = this.spool
    if (spool !== null) return spool.push(chunk, written)
    const more = this.put(chunk, written)
    if (more || this.limits === null) return more
    // The client fell behind: the pieces that follow wait in the spool, the upstream goes on.
    const s = this.spool = new Spool(this, this.limits)
    this.res.once('close', () => s.destroy())
    return true
  }

  put (chunk: Buffer, written?: () => void): boolean {
    const sink = this.sink
    if (sink !== null) return sink.write(chunk, written)
    const more = this.res.write(chunk, written)
    // The first piece went with the head; the rest may skip ServerResponse.
    if (this.direct) this.sink = this.res.socket
    return more
  }

  onceDrained (fn: () => void): void {
    if (this.spool !== null) this.spool.onceRoom(fn)
    else this.whenDrained(fn)
  }

  whenDrained (fn: () => void): void {
    (this.sink ?? this.res).once('drain', fn)
  }

  end (): void {
    if (this.spool !== null) this.spool.end()
    else this.res.end()
  }

  finish (): void {
    this.res.end()
  }

  failed (err: NodeJS.ErrnoException, path: string): void {
    this.owner?.spoolFailed(err, path)
    this.res.destroy()
  }
}

/**
 * An answer compressed on its way (nginx's gzip filter on a proxied answer): pieces go through
 * the zlib stream, what it makes goes on to `inner`. Backpressure both ways: the zlib stream is
 * paused while `inner` is full, so its input fills and `write` says false to the upstream leg.
 */
export class CompressingDownstream implements Downstream {
  constructor (private readonly inner: Downstream, private readonly z: Transform) {
    const resume = (): void => { z.resume() }
    z.on('data', (piece: Buffer) => {
      if (!inner.write(piece)) { z.pause(); inner.onceDrained(resume) }
    })
    z.once('end', () => { inner.end() })
  }

  buffer (limits: SpoolLimits | null): void {
    this.inner.buffer(limits)
  }

  head (status: number, headers: string[], reason?: string): void {
    this.inner.head(status, headers, reason)
  }

  /** `written` once zlib has taken the piece in (its bytes are not read after). */
  write (chunk: Buffer, written?: () => void): boolean {
    return this.z.write(chunk, written === undefined ? undefined : () => { written() })
  }

  onceDrained (fn: () => void): void {
    this.z.once('drain', fn)
  }

  end (): void {
    this.z.end()
  }
}
