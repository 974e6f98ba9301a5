import fs from 'node:fs'
import path from 'node:path'

/**
 * nginx's proxy_buffering for one response: a FIFO of body pieces the client is not taking yet,
 * in memory up to `memory` bytes, then appended to one temp file of at most `file` bytes, fed to
 * the client as it drains. The upstream is held back (push returns false) only while a piece is
 * being written to the file, or when both memory and file are full: memory stays within the
 * budget plus one piece, disk within the cap. The file is unlinked as soon as it is open, so
 * nothing is left behind whatever happens to the process.
 */

/** Where the spool's pieces go: the client side of the response. */
export interface SpoolSink {
  /** Writes a piece (`done` once the socket took it); false when the client is not keeping up. */
  put (chunk: Buffer, done?: () => void): boolean
  whenDrained (fn: () => void): void
  /** Ends the response (every piece was put). */
  finish (): void
  /** The temp file could not be opened, written or read (`err.code`: the errno); the spool is closed. */
  failed (err: NodeJS.ErrnoException, path: string): void
}

export interface SpoolLimits {
  /** Memory budget per response (proxy_buffers). */
  readonly memory: number
  /** Temp file cap per response (proxy_max_temp_file_size); 0: never spill. */
  readonly file: number
  /** Folder of the temp files (tempPath). */
  readonly dir: string
}

/** A stretch of the temp file; `ready` once its write completed. */
interface FilePiece { pos: number, len: number, ready: boolean }

/** Bytes read back from the file per piece sent to the client. */
const READ_SIZE = 65536
const OPEN_FLAGS = fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL
let seq = 0

export class Spool {
  private readonly queue: Array<Buffer | FilePiece> = []
  private head = 0
  private memBytes = 0
  private fd = -1
  /** An open or write of the temp file in flight. */
  private fileBusy = false
  /** Bytes appended to the file; `fileCap` drops to it once a piece did not fit. */
  private fileEnd = 0
  private fileCap: number
  /** A read of the file for the client in flight. */
  private reading = false
  /** Waiting for the client to drain. */
  private waiting = true
  private ended = false
  private closed = false
  /** The upstream's resume while held back. */
  private held: (() => void) | null = null
  private readonly pumpFn = (): void => { this.waiting = false; this.pump() }
  /** The read-back buffer, when the client socket is done with it. */
  private spare: Buffer | null = null
  path = ''

  /** Created when the client's socket backed up: the sink is not drained yet. */
  constructor (private readonly sink: SpoolSink, private readonly limits: SpoolLimits) {
    this.fileCap = limits.file
    sink.whenDrained(this.pumpFn)
  }

  /**
   * Takes a piece. `written`: the piece is a view of a reused read buffer, to release once
   * nothing refers to it (memory pieces are copied, file pieces released when written). Memory
   * stays within the budget, but for one piece when the file is full too.
   * False: hold the upstream until `onceRoom`'s callback.
   */
  push (chunk: Buffer, written?: () => void): boolean {
    if (this.closed) { written?.(); return true }
    const len = chunk.length
    if (this.head === this.queue.length && !this.waiting && !this.reading) {
      // Nothing queued and the client keeps up again: straight through, no copy.
      if (!this.sink.put(chunk, written)) this.wait()
      return true
    }
    const room = this.limits.memory - this.memBytes
    if (len <= room) {
      this.queueMemory(chunk, written)
      return true
    }
    if (this.fileEnd + len - Math.max(room, 0) <= this.fileCap) {
      // What fits in memory goes there (a copy), the rest to the file.
      if (room > 0) {
        this.queueMemory(Buffer.from(chunk.subarray(0, room)))
        chunk = chunk.subarray(room)
      }
      this.queueFile(chunk, written)
      return false
    }
    // Memory and file are full: this piece over the budget, then the upstream waits.
    this.fileCap = this.fileEnd
    this.queueMemory(chunk, written)
    return false
  }

  /** Calls `fn` once there is room again (the upstream resumes). */
  onceRoom (fn: () => void): void {
    this.held = fn
    this.release()
  }

  /** The upstream's answer is complete: finish once everything is sent. */
  end (): void {
    this.ended = true
    if (!this.waiting) this.pump()
  }

  /** The client left or the response was cut: drop everything, close the file. */
  destroy (): void {
    if (this.closed) return
    this.closed = true
    this.queue.length = 0
    this.head = 0
    this.memBytes = 0
    this.held = null
    this.closeFile()
  }

  private queueMemory (chunk: Buffer, written?: () => void): void {
    // The read buffer goes back to the upstream client: keep a copy.
    if (written !== undefined) { chunk = Buffer.from(chunk); written() }
    this.queue.push(chunk)
    this.memBytes += chunk.length
  }

  private queueFile (chunk: Buffer, written?: () => void): void {
    const piece: FilePiece = { pos: this.fileEnd, len: chunk.length, ready: false }
    this.fileEnd += chunk.length
    this.queue.push(piece)
    this.fileBusy = true
    const write = (): void => {
      fs.write(this.fd, chunk, 0, piece.len, piece.pos, (err) => {
        written?.()
        this.fileBusy = false
        if (err !== null) { this.fail(err); return }
        if (this.closed) { this.closeFile(); return }
        piece.ready = true
        if (!this.waiting) this.pump()
        this.release()
      })
    }
    if (this.fd !== -1) { write(); return }
    this.path = path.join(this.limits.dir, `proxyctl-${process.pid}-${++seq}-${Date.now().toString(36)}`)
    fs.open(this.path, OPEN_FLAGS, 0o600, (err, fd) => {
      if (err !== null) { written?.(); this.fileBusy = false; this.fail(err); return }
      this.fd = fd
      // Unlinked at once: the open descriptor keeps the data, no path is left behind.
      fs.unlink(this.path, (uerr) => {
        if (uerr !== null) { written?.(); this.fileBusy = false; this.fail(uerr); return }
        if (this.closed) { written?.(); this.fileBusy = false; this.closeFile(); return }
        write()
      })
    })
  }

  private wait (): void {
    this.waiting = true
    this.sink.whenDrained(this.pumpFn)
  }

  /** Feeds the client from the head of the queue until it backs up or the queue is empty. */
  private pump (): void {
    while (!this.closed && !this.reading && !this.waiting) {
      if (this.head === this.queue.length) {
        this.queue.length = 0
        this.head = 0
        if (this.ended) { this.closed = true; this.closeFile(); this.sink.finish() }
        return
      }
      const p = this.queue[this.head] as Buffer | FilePiece
      if (Buffer.isBuffer(p)) {
        this.queue[this.head++] = EMPTY
        this.memBytes -= p.length
        this.release()
        if (!this.sink.put(p)) this.wait()
        continue
      }
      if (!p.ready) return // its write's completion pumps
      this.readBack(p)
    }
  }

  private readBack (p: FilePiece): void {
    this.reading = true
    const n = Math.min(p.len, READ_SIZE)
    // One buffer per response, reused once the socket has taken it: a fresh one per read made
    // garbage at the client's full speed.
    const into = this.spare ?? Buffer.allocUnsafe(READ_SIZE)
    this.spare = null
    fs.read(this.fd, into, 0, n, p.pos, (err, got, buf) => {
      this.reading = false
      if (err === null && got === 0) err = Object.assign(new Error('temp file shorter than written'), { code: 'EIO' })
      if (err !== null) { this.fail(err); return }
      if (this.closed) { this.closeFile(); return }
      p.pos += got
      p.len -= got
      if (p.len === 0) this.queue[this.head++] = EMPTY
      if (!this.sink.put(buf.subarray(0, got), () => { this.spare = buf })) this.wait()
      this.pump()
    })
  }

  /** Resumes a held upstream when a piece fits again. */
  private release (): void {
    const fn = this.held
    if (fn === null || this.fileBusy || this.closed) return
    if (this.memBytes >= this.limits.memory && this.fileEnd >= this.fileCap) return
    this.held = null
    fn()
  }

  private fail (err: NodeJS.ErrnoException): void {
    if (this.closed) { this.closeFile(); return }
    this.destroy()
    this.sink.failed(err, this.path)
  }

  /** Closes the descriptor once no write or read of it is in flight. */
  private closeFile (): void {
    if (this.fd === -1 || this.fileBusy || this.reading) return
    const fd = this.fd
    this.fd = -1
    fs.close(fd, () => {})
  }
}

const EMPTY = Buffer.alloc(0)
