import { createHash } from 'node:crypto'
import type { CacheEntry } from './store.js'

/**
 * An entry as bytes, for the stores outside this process (a file, a Redis value): a 4-byte
 * length, the head as JSON (with the key it was stored under, checked on read), then the body.
 * A value that does not parse, names another key or whose body is shorter than its head says is
 * no entry (never a torn answer).
 */
export function encodeEntry (key: string, e: CacheEntry): Buffer {
  const head = Buffer.from(JSON.stringify({
    key, status: e.status, reason: e.reason, headers: e.headers, stored: e.stored, validUntil: e.validUntil,
    updatingUntil: e.updatingUntil, errorUntil: e.errorUntil, vary: e.vary, varyValues: e.varyValues,
    etag: e.etag ?? null, lastModified: e.lastModified ?? null, bodyLength: e.body.length
  }))
  const len = Buffer.alloc(4)
  len.writeUInt32BE(head.length)
  return Buffer.concat([len, head, e.body])
}

interface Head {
  key: string, status: number, reason: string, headers: string[], stored: number, validUntil: number, updatingUntil: number, errorUntil: number,
  vary: string[], varyValues: string[], etag: string | null, lastModified: string | null, bodyLength: number
}

export function decodeEntry (key: string, b: Buffer): CacheEntry | undefined {
  if (b.length < 4) return undefined
  const n = b.readUInt32BE(0)
  if (b.length < 4 + n) return undefined
  let h: Head
  try { h = JSON.parse(b.subarray(4, 4 + n).toString()) as Head } catch { return undefined }
  if (h.key !== key || b.length !== 4 + n + h.bodyLength) return undefined
  return {
    status: h.status, reason: h.reason, headers: h.headers, body: b.subarray(4 + n), stored: h.stored, validUntil: h.validUntil,
    updatingUntil: h.updatingUntil, errorUntil: h.errorUntil, vary: h.vary, varyValues: h.varyValues,
    etag: h.etag ?? undefined, lastModified: h.lastModified ?? undefined
  }
}

/** The name a key is stored under (a file name, a Redis key's tail): nginx's md5 of the key, hex. */
export function keyHash (key: string): string {
  return createHash('md5').update(key).digest('hex')
}
