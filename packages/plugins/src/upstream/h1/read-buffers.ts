/**
 * Socket read buffers, reused. Node's default read path allocates a fresh 64 KiB ArrayBuffer per
 * read; for a 1 MiB body that is 16 allocations whose external memory V8 counts against the old
 * generation, which kept bringing mark-compacts (measured: bench/README.md, "Memory and GC"). With
 * `net.connect({ onread })` the socket reads into a buffer we hand it; it goes back to the free
 * list once every chunk cut from it has been written to the client (a reference count).
 */
/**
 * 256 KiB: a 1 MiB body is then 4+ reads and writes instead of 16+, which serves more large
 * responses per core than 64 KiB for some more peak RSS (measured: bench/README.md, "Read buffer
 * size"). Only pages a read fills become resident: small responses touch one.
 */
export const READ_BUFFER_SIZE = 262144
/** Free buffers kept for reuse; more than this are left to the GC (a burst's worth, bounded). */
const MAX_FREE = 256

export class ReadBuffer {
  readonly buf = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE)
  /** The socket's read into it, plus each chunk cut from it still on its way to the client. */
  refs = 0
  /** Passed as a write callback: one function per buffer, made once, not one per chunk. */
  readonly unref = (): void => {
    if (--this.refs === 0 && free.length < MAX_FREE) free.push(this)
  }
}

const free: ReadBuffer[] = []

/** A buffer for the socket's next read, with the read's reference taken. */
export function takeReadBuffer (): ReadBuffer {
  const rb = free.pop() ?? new ReadBuffer()
  rb.refs = 1
  return rb
}
