import type { Downstream } from '../proxy/downstream.js'
import type { SpoolLimits } from '../proxy/spool.js'
import type { CacheEntry } from './store.js'

/**
 * The upstream's body on its way to the client, copied for the cache (before compression: the
 * entry holds what the upstream sent). Once it is larger than the zone's maxEntrySize the copy is
 * dropped and the answer passes uncached. Only a body that arrived whole is stored (`end`).
 */
export class CapturingDownstream implements Downstream {
  private pieces: Buffer[] | null = []
  private length = 0

  constructor (private readonly inner: Downstream, private readonly max: number,
    private readonly keep: (body: Buffer) => void, private readonly drop: () => void) {}

  buffer (limits: SpoolLimits | null): void { this.inner.buffer(limits) }

  head (status: number, headers: string[], reason?: string): void { this.inner.head(status, headers, reason) }

  write (chunk: Buffer, written?: () => void): boolean {
    const pieces = this.pieces
    if (pieces !== null) {
      this.length += chunk.length
      // A copy: the upstream client reuses its read buffers once `written` is called.
      if (this.length <= this.max) pieces.push(Buffer.from(chunk))
      else { this.pieces = null; this.drop() }
    }
    return this.inner.write(chunk, written)
  }

  onceDrained (fn: () => void): void { this.inner.onceDrained(fn) }

  end (): void {
    const pieces = this.pieces
    this.pieces = null
    if (pieces !== null) this.keep(pieces.length === 1 ? pieces[0] as Buffer : Buffer.concat(pieces, this.length))
    this.inner.end()
  }
}

/** An entry made whole: its head and its body. */
export function withBody (head: Omit<CacheEntry, 'body'>, body: Buffer): CacheEntry {
  return { ...head, body }
}
