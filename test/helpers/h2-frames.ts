/** Raw HTTP/2 frames (RFC 9113 4.1), for tests that speak h2c byte by byte. */

/** A frame: 9 bytes of head (length, type, flags, stream) and the payload. */
export function frame (type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream, 5)
  return Buffer.concat([head, payload])
}

export const DATA = 0x0
export const HEADERS = 0x1
export const RST_STREAM = 0x3
export const SETTINGS = 0x4
export const GOAWAY = 0x7
export const CONTINUATION = 0x9
export const END_STREAM = 0x1
export const END_HEADERS = 0x4

/** The client's connection preface and an empty SETTINGS frame. */
export const PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(SETTINGS, 0, 0, Buffer.alloc(0))])
