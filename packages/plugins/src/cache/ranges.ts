import type { IncomingMessage } from 'node:http'
import type { RequestContext } from '@proxyctl/core'
import { multipartLayout, parseHttpTime, rangesOf, type MultipartLayout } from '@proxyctl/core/internal'
import type { Downstream } from '../proxy/downstream.js'
import type { SpoolLimits } from '../proxy/spool.js'

/** What the range filter makes of a cached answer: one range, several (a multipart body), 416, or the whole answer. */
export type CachedRange = { start: number, end: number } | { multipart: MultipartLayout } | 'unsatisfiable' | undefined

/**
 * nginx's range filter on an answer the cache keeps or kept (the upstream got no Range: the
 * cache asks for the whole answer): a 200 whose upstream said `Accept-Ranges: bytes` answers one
 * range as a 206 with Content-Range, several as a 206 multipart/byteranges when the whole body is
 * at hand (`whole`: a HIT; nginx cuts several ranges from one buffer only, so a MISS answers them
 * with the whole answer), an unsatisfiable one as 416. `size`: the body's length (undefined:
 * unknown, no ranges). `headers` is changed in place for a 206.
 */
export function rangeFor (ctx: RequestContext, req: IncomingMessage, status: number, headers: string[], size: number | undefined, whole: boolean): CachedRange {
  const range = req.headers.range
  if (status !== 200 || range === undefined || size === undefined) return undefined
  let bytes = false
  let etag = ''
  let lm = -1
  let type: string | undefined
  for (let i = 0; i < headers.length; i += 2) {
    const n = (headers[i] as string).toLowerCase()
    if (n === 'accept-ranges') bytes = (headers[i + 1] as string).trim() === 'bytes'
    else if (n === 'etag') etag = headers[i + 1] as string
    else if (n === 'last-modified') lm = parseHttpTime(headers[i + 1] as string)
    else if (n === 'content-type') type = headers[i + 1] as string
    else if (n === 'content-encoding') return undefined
  }
  const maxRanges = (ctx.location ?? ctx.server).content.maxRanges
  if (!bytes || maxRanges === 0) return undefined
  const r = rangesOf(range, req.headers['if-range'] as string | undefined, etag, lm, size, maxRanges)
  if (r === undefined || r === 'unsatisfiable') return r
  if (r.length > 1 && !whole) return undefined
  const multipart = r.length > 1 ? multipartLayout(r, type, size) : undefined
  for (let i = 0; i < headers.length; i += 2) {
    const n = (headers[i] as string).toLowerCase()
    if (n === 'accept-ranges' || n === 'content-length' || (multipart !== undefined && n === 'content-type')) { headers.splice(i, 2); i -= 2 }
  }
  if (multipart !== undefined) {
    headers.push('Content-Type', multipart.contentType, 'Content-Length', String(multipart.length))
    return { multipart }
  }
  const [start, end] = r[0] as [number, number]
  headers.push('Content-Length', String(end - start), 'Content-Range', `bytes ${start}-${end - 1}/${size}`)
  return { start, end }
}

/** A multipart/byteranges body cut from a body held whole. */
export function multipartBody (body: Buffer, m: MultipartLayout): Buffer {
  const pieces: Buffer[] = []
  for (const p of m.parts) pieces.push(Buffer.from(p.head, 'latin1'), body.subarray(p.start, p.end))
  pieces.push(Buffer.from(m.tail, 'latin1'))
  return Buffer.concat(pieces, m.length)
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
