import { parseHttpTime } from './conditions.js'

/**
 * nginx's range filter: undefined (answer the whole file), 'unsatisfiable' (416), or the ranges
 * as [start, end) pairs in the order asked. If-Range is an ETag compared strongly (byte for byte)
 * or a date equal to the file's.
 */
export function rangesOf (header: string | undefined, ifRange: string | undefined, etag: string, mtime: number, size: number, maxRanges: number): Array<[number, number]> | 'unsatisfiable' | undefined {
  if (header === undefined || header.length < 7 || header.slice(0, 6).toLowerCase() !== 'bytes=') return undefined
  if (ifRange !== undefined) {
    if (ifRange.length >= 2 && ifRange.endsWith('"')) { if (ifRange !== etag) return undefined } else if (parseHttpTime(ifRange) !== mtime) return undefined
  }
  const out: Array<[number, number]> = []
  let total = 0
  let left = maxRanges
  let p = 6
  const at = (): string => header[p] ?? ''
  const digit = (): boolean => at() >= '0' && at() <= '9'
  const spaces = (): void => { while (at() === ' ') p++ }
  for (;;) {
    let start = 0
    let end = 0
    let suffix = false
    let open = false
    spaces()
    if (at() !== '-') {
      if (!digit()) return 'unsatisfiable'
      while (digit()) { start = start * 10 + Number(at()); p++ }
      spaces()
      if (at() !== '-') return 'unsatisfiable'
      p++
      spaces()
      if (at() === ',' || at() === '') { end = size; open = true }
    } else { suffix = true; p++ }
    if (!open) {
      if (!digit()) return 'unsatisfiable'
      while (digit()) { end = end * 10 + Number(at()); p++ }
      spaces()
      if (at() !== ',' && at() !== '') return 'unsatisfiable'
      if (suffix) { start = end < size ? size - end : 0; end = size - 1 }
      end = end >= size ? size : end + 1
    }
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return 'unsatisfiable'
    if (start < end) {
      out.push([start, end])
      total += end - start
      if (left-- === 0) return undefined
    } else if (start === 0) return undefined
    if (at() !== ',') break
    p++
  }
  if (out.length === 0) return 'unsatisfiable'
  if (total > size) return undefined
  return out
}

/** One part of a multipart/byteranges answer: the bytes [start, end) after their part head. */
export interface RangePart { readonly start: number, readonly end: number, readonly head: string }

/** A multipart/byteranges answer's layout: its Content-Type, the parts in the order asked, the closing boundary, the whole length. */
export interface MultipartLayout { readonly contentType: string, readonly parts: RangePart[], readonly tail: string, readonly length: number }

let nextBoundary = Math.floor(Math.random() * 1e9)

/**
 * nginx's multipart/byteranges for several ranges of a `size`-byte body of type `type`: a
 * 20-digit boundary, each part's head (its Content-Type when the answer has one, its
 * Content-Range), the closing boundary.
 */
export function multipartLayout (ranges: ReadonlyArray<readonly [number, number]>, type: string | undefined, size: number): MultipartLayout {
  const boundary = String(nextBoundary++).padStart(20, '0')
  const typeLine = type === undefined ? '' : `Content-Type: ${type}\r\n`
  const parts = ranges.map(([start, end]) => ({ start, end, head: `\r\n--${boundary}\r\n${typeLine}Content-Range: bytes ${start}-${end - 1}/${size}\r\n\r\n` }))
  const tail = `\r\n--${boundary}--\r\n`
  // Heads are header text, one byte per character on the wire (as Node writes header values).
  const length = parts.reduce((n, p) => n + p.head.length + p.end - p.start, tail.length)
  return { contentType: `multipart/byteranges; boundary=${boundary}`, parts, tail, length }
}
