import fs from 'node:fs'
import type { IncomingMessage } from 'node:http'
import path from 'node:path'
import { Readable, Transform, type TransformCallback } from 'node:stream'
import { RequestBodyError } from '@proxyctl/core'

/**
 * Reading a client's request body, in one place, as nginx reads it: clientMaxBodySize counted on
 * the bytes as they come (a declared Content-Length was checked at the front door, core's
 * request-body-limit.ts; a chunked body is only known as it grows), clientBodyTimeout between two
 * reads (only while we want to read: not while the body waits on the upstream or the disk), and
 * either the whole body buffered before the upstream is contacted (proxy_request_buffering on:
 * `BufferedBody`) or counted on its way through (`CountedBody`, proxy_request_buffering off).
 */

/** A location's limits for one body. */
export interface BodyLimits {
  /** clientMaxBodySize; 0: none. */
  readonly maxSize: number
  /** clientBodyBufferSize: a buffered body beyond this goes to a temp file. */
  readonly bufferSize: number
  /** clientBodyTimeout, ms. */
  readonly timeout: number
  /** Where temp files go (the config's tempPath). */
  readonly tempPath: string
}

function tooLarge (n: number, max: number): RequestBodyError {
  return new RequestBodyError('PROXYCTL_BODY_TOO_LARGE', `client intended to send too large chunked body: ${n} bytes`, 413, 'clientMaxBodySize', max)
}

function timedOut (limit: number): RequestBodyError {
  return new RequestBodyError('PROXYCTL_CLIENT_TIMEOUT', 'client timed out while reading client request body', 408, 'clientBodyTimeout', limit)
}

/**
 * clientBodyTimeout on one timer per body: a read notes the time, and the timer, when it fires,
 * arms itself again for what is left, or for the whole span while we are not reading (`idle()`
 * false: the body waits on the upstream or the disk, which is not the client's fault).
 */
class BodyTimer {
  private timer: NodeJS.Timeout | undefined
  private last = Date.now()

  constructor (private readonly limit: number, private readonly reading: () => boolean, private readonly fire: () => void) {
    if (limit > 0) this.timer = setTimeout(onBodyTimer, limit, this).unref()
  }

  read (): void { this.last = Date.now() }

  check (): void {
    const idle = this.reading() ? Date.now() - this.last : 0
    if (idle < this.limit) {
      if (!this.reading()) this.last = Date.now()
      this.timer = setTimeout(onBodyTimer, this.limit - idle, this).unref()
      return
    }
    this.timer = undefined
    this.fire()
  }

  stop (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}

function onBodyTimer (t: BodyTimer): void { t.check() }

let serial = 0

/**
 * A request body read whole before the upstream is contacted: in memory up to bufferSize, beyond
 * it in one temp file under tempPath. The file is unlinked as soon as it is open (as nginx does),
 * so nothing is left behind whatever happens to the process; its descriptor closes on `dispose()`.
 * In memory the body never holds more than bufferSize plus the piece being read.
 *
 * The file is written and read synchronously, as nginx writes its temp files: one read piece
 * going to the page cache costs less than a thread-pool round trip each way (bench/README.md,
 * "Request buffering"), and a write that completes in place needs no pausing of the client.
 */
export class BufferedBody {
  /** Bytes read so far (the whole body once `done` was called without error). */
  length = 0
  private chunks: Buffer[] = []
  private memory: Buffer | undefined
  private fd = -1
  private finished = false
  private disposed = false
  private readonly timer: BodyTimer

  /**
   * Starts reading `req`; `done` is called once: with no error when the body is whole (then
   * `payload()` gives it), else with a 413 (too large), 408 (clientBodyTimeout) or 500 (the temp
   * file failed). A client that leaves ends nothing here: the caller aborts on the connection's close.
   */
  constructor (private readonly req: IncomingMessage, private readonly limits: BodyLimits, private readonly done: (err: RequestBodyError | undefined) => void) {
    this.timer = new BodyTimer(limits.timeout, () => true, () => this.fail(timedOut(limits.timeout)))
    req.on('data', this.onData)
    req.once('end', this.onEnd)
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.finished) return
    this.timer.read()
    const at = this.length
    const n = this.length += chunk.length
    const max = this.limits.maxSize
    if (max > 0 && n > max) { this.fail(tooLarge(n, max)); return }
    if (this.fd === -1) {
      if (n <= this.limits.bufferSize) { this.chunks.push(chunk); return }
      this.chunks.push(chunk)
      this.spill()
      return
    }
    this.writeAt(chunk, at)
  }

  private readonly onEnd = (): void => {
    if (this.finished) return
    this.finished = true
    this.timer.stop()
    this.done(undefined)
  }

  /** Past bufferSize: the temp file, opened and unlinked at once, takes what is in memory. */
  private spill (): void {
    const file = path.join(this.limits.tempPath, `proxyctl-body-${process.pid}-${++serial}`)
    try {
      this.fd = fs.openSync(file, 'wx+', 0o600)
    } catch (err) {
      this.fail(bufferFailed(file, err as NodeJS.ErrnoException))
      return
    }
    try {
      fs.unlinkSync(file)
    } catch (err) {
      this.fail(bufferFailed(file, err as NodeJS.ErrnoException))
      return
    }
    let at = 0
    for (const piece of this.chunks) {
      if (!this.writeAt(piece, at)) return
      at += piece.length
    }
    this.chunks = []
  }

  private writeAt (chunk: Buffer, position: number): boolean {
    try {
      let done = 0
      while (done < chunk.length) done += fs.writeSync(this.fd, chunk, done, chunk.length - done, position + done)
      return true
    } catch (err) {
      this.fail(bufferFailed(this.limits.tempPath, err as NodeJS.ErrnoException))
      return false
    }
  }

  private fail (err: RequestBodyError): void {
    if (this.finished) return
    this.finished = true
    this.timer.stop()
    this.req.off('data', this.onData)
    this.done(err)
  }

  /** The body as read, when it stayed in memory (the h1 client writes the pieces in one writev). */
  get inMemory (): readonly Buffer[] | undefined {
    return this.fd === -1 ? this.chunks : undefined
  }

  /**
   * The body to send (again, on a retry): a Buffer in memory; from the temp file, one Buffer when
   * it fits in one read piece (the upstream client writes a Buffer in one go, a stream piece by
   * piece), else a fresh stream over the file. Throws when the file cannot be read.
   */
  payload (): Buffer | Readable {
    if (this.fd === -1) return (this.memory ??= this.chunks.length === 1 ? this.chunks[0] as Buffer : Buffer.concat(this.chunks))
    if (this.length > FILE_PIECE) return new FileBody(this)
    const buf = Buffer.allocUnsafe(this.length)
    let done = 0
    while (done < this.length) {
      const n = fs.readSync(this.fd, buf, done, this.length - done, done)
      if (n === 0) throw new Error('the request body temp file ended early')
      done += n
    }
    return buf
  }

  /**
   * Reads up to `length` bytes at `position` of the temp file for a FileBody; -1 once disposed
   * (the descriptor is closed, and its number may be another file's or socket's by now).
   */
  readAt (buf: Buffer, length: number, position: number): number {
    if (this.disposed || this.fd === -1) return -1
    return fs.readSync(this.fd, buf, 0, length, position)
  }

  /** Lets go of the body: stops reading, closes the temp file. Idempotent. */
  dispose (): void {
    if (this.disposed) return
    this.disposed = true
    this.finished = true
    this.timer.stop()
    this.req.off('data', this.onData)
    this.chunks = []
    this.memory = undefined
    if (this.fd !== -1) {
      const fd = this.fd
      this.fd = -1
      fs.close(fd, () => {})
    }
  }
}

/**
 * The temp file as a stream for one attempt. Not fs.createReadStream over the descriptor: the
 * upstream client destroys the stream when done, which would close the descriptor under the
 * body (and under a retry, and a later close would hit a number by then reused).
 */
class FileBody extends Readable {
  private position = 0

  constructor (private readonly body: BufferedBody) {
    super({ highWaterMark: FILE_PIECE })
  }

  override _read (): void {
    const length = Math.min(FILE_PIECE, this.body.length - this.position)
    if (length <= 0) { this.push(null); return }
    const buf = Buffer.allocUnsafe(length)
    let bytes: number
    try {
      bytes = this.body.readAt(buf, length, this.position)
    } catch (err) {
      this.destroy(err as Error)
      return
    }
    if (bytes < 0) { this.destroy(new Error('the request body was let go')); return }
    if (bytes === 0) { this.destroy(new Error('the request body temp file ended early')); return }
    this.position += bytes
    this.push(bytes < length ? buf.subarray(0, bytes) : buf)
  }
}

/** One read of a temp file (and the stream's buffer). */
const FILE_PIECE = 64 * 1024

function bufferFailed (where: string, err: NodeJS.ErrnoException): RequestBodyError {
  return new RequestBodyError('PROXYCTL_BODY_BUFFER_FAILED', `could not buffer the client request body in a temp file: ${where}: ${err.code ?? err.message}`, 500, 'tempPath', undefined, { cause: err })
}

/**
 * A body streamed to the upstream as it comes (proxy_request_buffering off), counted on its way:
 * clientMaxBodySize and clientBodyTimeout as above. The upstream's backpressure pauses the client
 * (pipe), and no read is due then.
 */
export class CountedBody extends Transform {
  private n = 0
  private readonly timer: BodyTimer

  constructor (private readonly req: IncomingMessage, private readonly limits: BodyLimits, private readonly failed: (err: RequestBodyError) => void) {
    super()
    this.timer = new BodyTimer(limits.timeout, () => !req.isPaused() && !req.readableEnded, () => this.fail(timedOut(limits.timeout)))
    req.pipe(this)
    this.once('close', () => { this.timer.stop() })
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.timer.read()
    this.n += chunk.length
    const max = this.limits.maxSize
    if (max > 0 && this.n > max) { this.fail(tooLarge(this.n, max)); cb(); return }
    cb(null, chunk)
  }

  override _flush (cb: TransformCallback): void {
    this.timer.stop()
    cb()
  }

  private fail (err: RequestBodyError): void {
    this.timer.stop()
    this.req.unpipe(this)
    this.failed(err)
  }
}
