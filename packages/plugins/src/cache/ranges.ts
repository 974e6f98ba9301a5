import type { IncomingMessage } from 'node:http'
import type { RequestContext } from '@proxyctl/core'
import { parseHttpTime, rangesOf } from '@proxyctl/core/internal'
import type { Downstream } from '../proxy/downstream.js'
import type { SpoolLimits } from '../proxy/spool.js'

/**
 * nginx's range filter on an answer the cache keeps or kept (the upstream got no Range: the
 * cache asks for the whole answer): a 200 whose upstream said `Accept-Ranges: bytes` answers one
 * range as a 206 with Content-Range, an unsatisfiable one as 416. `size`: the body's length
 * (undefined: unknown, no ranges). `headers` is changed in place for a 206.
 */
export function rangeFor (ctx: RequestContext, req: IncomingMessage, status: number, headers: string[], size: number | undefined): { start: number, end: number } | 'unsatisfiable' | undefined {
  const range = req.headers.range
  if (status !== 200 || range === undefined || size === undefined) return undefined
  let bytes = false
  let etag = ''
  let lm = -1
  for (let i = 0; i < headers.length; i += 2) {
    const n = (headers[i] as string).toLowerCase()
    if (n === 'accept-ranges') bytes = (headers[i + 1] as string).trim() === 'bytes'
    else if (n === 'etag') etag = headers[i + 1] as string
    else if (n === 'last-modified') lm = parseHttpTime(headers[i + 1] as string)
    else if (n === 'content-encoding') return undefined
  }
  const maxRanges = (ctx.location ?? ctx.server).content.maxRanges
  if (!bytes || maxRanges === 0) return undefined
  const r = rangesOf(range, req.headers['if-range'] as string | undefined, etag, lm, size, maxRanges)
  // Several ranges (multipart/byteranges) are not cut from a proxied answer: the whole of it (README).
  if (r === undefined || r === 'unsatisfiable' || r.length !== 1) return r === 'unsatisfiable' ? r : undefined
  const [start, end] = r[0] as [number, number]
  for (let i = 0; i < headers.length; i += 2) {
    const n = (headers[i] as string).toLowerCase()
    if (n === 'accept-ranges' || n === 'content-length') { headers.splice(i, 2); i -= 2 }
  }
  headers.push('Content-Length', String(end - start), 'Content-Range', `bytes ${start}-${end - 1}/${size}`)
  return { start, end }
}

/** The body's bytes [start, end) on their way to the client (a 206 of a body read whole from the upstream). */
export class SlicingDownstream implements Downstream {
  private at = 0

  constructor (private readonly inner: Downstream, private readonly from: number, private readonly to: number) {}

  buffer (limits: SpoolLimits | null): void { this.inner.buffer(limits) }

  head (status: number, headers: string[], reason?: string): void { this.inner.head(status, headers, reason) }

  write (chunk: Buffer, written?: () => void): boolean {
    const at = this.at
    this.at += chunk.length
    const a = Math.max(this.from - at, 0)
    const b = Math.min(this.to - at, chunk.length)
    if (a >= b) { written?.(); return true }
    return this.inner.write(a === 0 && b === chunk.length ? chunk : chunk.subarray(a, b), written)
  }

  onceDrained (fn: () => void): void { this.inner.onceDrained(fn) }

  end (): void { this.inner.end() }
}
