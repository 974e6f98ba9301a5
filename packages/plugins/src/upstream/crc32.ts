import * as zlib from 'node:zlib'

/**
 * CRC-32 (IEEE 802.3, the one zlib and nginx's `ngx_crc32_*` compute), unsigned.
 * `value` continues a previous result: `crc32(b, crc32(a)) === crc32(a + b)`.
 * Strings are hashed as their UTF-8 bytes.
 *
 * Uses `zlib.crc32` (Node >= 20.15); falls back to a table for older 20.x.
 */
export function crc32 (data: string | Uint8Array, value = 0): number {
  return impl(data, value)
}

type Crc32 = (data: string | Uint8Array, value: number) => number

const native = (zlib as unknown as { crc32?: Crc32 }).crc32

const impl: Crc32 = typeof native === 'function' ? (data, value) => native(data, value) : tableCrc32

let table: Uint32Array | undefined

function makeTable (): Uint32Array {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
}

/** Exported for tests: the fallback used when `zlib.crc32` is missing. */
export function tableCrc32 (data: string | Uint8Array, value = 0): number {
  table ??= makeTable()
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
  let c = (value ^ 0xffffffff) >>> 0
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}
