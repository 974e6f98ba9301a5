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
