import fs from 'node:fs'
import type { FastifyBaseLogger } from 'fastify'
import { stdoutStream } from './stdout.js'

/** Lines waiting for the destination beyond this are dropped (counted, and said in a warn line). */
export const SINK_LIMIT = 4 << 20
/** At most one warn line per this many ms about dropped lines. */
const DROP_WARN_EVERY = 5000
/**
 * After a write, lines that came meanwhile wait this long for more: a busy proxy then makes one
 * write per batch rather than one per turn of the event loop (a file write's cost is mostly per
 * call), as nginx's `access_log ... buffer= flush=`, with a flush short enough that a line is
 * never far behind its request. An idle sink writes a line at once.
 */
export const SINK_GAP_MS = 50

/** A batch's buffer; a line longer than a third of it gets one of its own. */
const CHUNK = 64 << 10

/**
 * One access-log destination: a file (opened for append, reopened on SIGUSR1 as nginx reopens
 * its logs for logrotate) or stdout. Each line is encoded at once into the batch's buffer (so no
 * line's string outlives its request), and a batch goes in one write, with one write in flight
 * at a time, so serving never waits for the disk or a reader; a file's write runs on libuv's
 * thread pool, stdout through the same non-blocking stream as the JSON log. While a write is in
 * flight lines gather, and go SINK_GAP_MS after it. Past SINK_LIMIT bytes waiting, lines are
 * dropped and counted.
 */
export class LogSink {
  /** Full buffers of the batch, then `cur` up to `pos`. */
  private chunks: Buffer[] = []
  private cur: Buffer | undefined = undefined
  private pos = 0
  /** Bytes in the batch. */
  private pending = 0
  private inFlight = 0
  private scheduled = false
  private fd = -1
  private reopening = false
  private closed = false
  /** Lines dropped because the destination did not keep up, since start. */
  dropped = 0
  private droppedSinceWarn = 0
  private lastWarn = 0

  constructor (readonly path: string, private readonly log: FastifyBaseLogger) {
    if (path !== 'stdout') this.fd = fs.openSync(path, 'a')
  }

  write (line: string): void {
    if (this.closed) return
    if (this.pending + this.inFlight + line.length > SINK_LIMIT) { this.drop(); return }
    let cur = this.cur
    // Three bytes per UTF-16 unit at most in UTF-8.
    if (cur === undefined || this.pos + 3 * line.length > cur.length) {
      if (cur !== undefined) this.chunks.push(cur.subarray(0, this.pos))
      cur = this.cur = Buffer.allocUnsafe(Math.max(CHUNK, 3 * line.length))
      this.pos = 0
    }
    const n = cur.write(line, this.pos)
    this.pos += n
    this.pending += n
    if (!this.scheduled && this.inFlight === 0) {
      this.scheduled = true
      setImmediate(flushSink, this)
    }
  }

  /** The batch's buffers, handed over: the sink starts a new one. */
  private take (): Buffer[] {
    const list = this.chunks
    if (this.cur !== undefined && this.pos > 0) list.push(this.cur.subarray(0, this.pos))
    this.chunks = []
    this.cur = undefined
    this.pos = 0
    this.pending = 0
    return list
  }

  private drop (): void {
    this.dropped++
    this.droppedSinceWarn++
    const now = Date.now()
    if (now - this.lastWarn < DROP_WARN_EVERY) return
    this.lastWarn = now
    this.log.warn({ code: 'PROXYCTL_ACCESS_LOG_DROPPED', path: this.path, dropped: this.droppedSinceWarn, droppedTotal: this.dropped, limit: 'accessLog buffer', bytes: SINK_LIMIT },
      `access log "${this.path}" does not keep up: ${this.droppedSinceWarn} lines dropped (over ${SINK_LIMIT} bytes waiting)`)
    this.droppedSinceWarn = 0
  }

  /** Writes what is pending (one write at a time). */
  flush (): void {
    this.scheduled = false
    if (this.inFlight !== 0 || this.pending === 0 || this.reopening || this.closed) return
    this.inFlight = this.pending
    const list = this.take()
    if (this.fd === -1) {
      const out = stdoutStream()
      if (out === undefined) { this.inFlight = 0; return }
      // Written, or dropped by a broken stdout: either way the next batch may go.
      if (out.write(list.length === 1 ? list[0] as Buffer : Buffer.concat(list))) this.written(null)
      else out.once('drain', () => { this.written(null) })
      return
    }
    fs.writev(this.fd, list, (err) => { this.written(err) })
  }

  private written (err: NodeJS.ErrnoException | null): void {
    this.inFlight = 0
    if (err !== null) this.failed(err)
    if (this.pending !== 0 && !this.scheduled) { this.scheduled = true; setTimeout(flushSink, SINK_GAP_MS, this).unref() }
  }

  private failed (err: NodeJS.ErrnoException): void {
    const now = Date.now()
    if (now - this.lastWarn < DROP_WARN_EVERY) return
    this.lastWarn = now
    this.log.error({ code: 'PROXYCTL_ACCESS_LOG_FAILED', path: this.path, errno: err.code, reason: err.message }, `access log "${this.path}" write failed (${err.code ?? ''}: ${err.message})`)
  }

  /** nginx's reopen (SIGUSR1): the path is opened again, so a renamed file is let go and a new one made. */
  reopen (): void {
    if (this.fd === -1 || this.closed) return
    this.reopening = true
    fs.open(this.path, 'a', (err, fd) => {
      this.reopening = false
      if (err !== null) { this.failed(err); this.flush(); return }
      const old = this.fd
      const swap = (): void => {
        this.fd = fd
        fs.close(old, () => {})
        this.flush()
      }
      if (this.inFlight === 0) swap()
      else setImmediate(function wait (this: LogSink) { if (this.inFlight === 0) swap(); else setImmediate(wait.bind(this)) }.bind(this))
    })
  }

  /** Writes what is left (synchronously: the process is stopping) and closes the file. */
  close (): void {
    if (this.closed) return
    this.closed = true
    if (this.fd === -1) {
      const list = this.take()
      if (list.length > 0) stdoutStream()?.write(Buffer.concat(list))
      return
    }
    const fd = this.fd
    const finish = (): void => {
      const list = this.take()
      try { if (list.length > 0) fs.writeSync(fd, Buffer.concat(list)) } catch { /* the process is stopping */ }
      fs.close(fd, () => {})
    }
    if (this.inFlight === 0) finish()
    else {
      const wait = (): void => { if (this.inFlight === 0) finish(); else setImmediate(wait) }
      setImmediate(wait)
    }
  }
}

function flushSink (sink: LogSink): void { sink.flush() }
