/**
 * Socket read buffers, reused. Node's default read path allocates a fresh 64 KiB ArrayBuffer per
 * read; for a 1 MiB body that is 16 allocations whose external memory V8 counts against the old
 * generation, which kept bringing mark-compacts (measured: bench/README.md, "Memory and GC"). With
 * `net.connect({ onread })` the socket reads into a buffer we hand it; it goes back to its free
 * list once every chunk cut from it has been written to the client (a reference count).
 *
 * Two sizes, as nginx's proxy_buffer_size and proxy_buffers: Node asks for the next buffer right
 * after each read, so a connection always holds one, idle ones included. A connection that is not
 * in a response body (idle, or waiting for a head) holds a head buffer; only a body is read into
 * body buffers, which serve more large responses per core (bench/README.md, "Read buffer size").
 * An idle keep-alive connection then holds 16 KiB, not 256 (bench/README.md, "Slow readers").
 */
export const BODY_BUFFER_SIZE = 262144
export const HEAD_BUFFER_SIZE = 16384
/** Free buffers kept for reuse per size; more than this are left to the GC (a burst's worth, bounded). */
const MAX_FREE = 256

export class ReadBuffer {
  readonly buf: Buffer
  /** The socket's read into it, plus each chunk cut from it still on its way to the client. */
  refs = 0
  /** Passed as a write callback: one function per buffer, made once, not one per chunk. */
  readonly unref = (): void => {
    if (--this.refs === 0 && this.free.length < MAX_FREE) this.free.push(this)
  }

  constructor (size: number, private readonly free: ReadBuffer[]) {
    this.buf = Buffer.allocUnsafeSlow(size)
  }
}

const freeBody: ReadBuffer[] = []
const freeHead: ReadBuffer[] = []

/** A buffer for the socket's next read (a body buffer when `body`), with the read's reference taken. */
export function takeReadBuffer (body: boolean): ReadBuffer {
  const rb = body
    ? freeBody.pop() ?? new ReadBuffer(BODY_BUFFER_SIZE, freeBody)
    : freeHead.pop() ?? new ReadBuffer(HEAD_BUFFER_SIZE, freeHead)
  rb.refs = 1
  return rb
}
