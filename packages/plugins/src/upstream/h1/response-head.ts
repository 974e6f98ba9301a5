import { H1Error } from './errors.js'

/** How the response body is delimited (RFC 9112 §6.3). */
export enum Framing { None, Length, Chunked, UntilClose }

export interface ResponseHead {
  status: number
  statusText: string
  /** name, value, name, value ... as sent (names keep their case). */
  rawHeaders: string[]
  framing: Framing
  /** For Framing.Length. */
  length: number
  /** The connection may carry another request after this response. */
  keepAlive: boolean
  /** The upstream's `Keep-Alive: timeout=N`, in ms, or 0. */
  keepAliveHint: number
}

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\r\n]*))?$/
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** Bytes a field value must not hold: controls other than tab, and DEL. */
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/

/**
 * Parses a response head: the status line and header lines, without the blank line that ends it.
 * Lines end in CRLF or a bare LF (nginx and llhttp accept both from upstreams). `method` decides
 * bodiless responses: HEAD, and 1xx, 204, 304.
 */
export function parseResponseHead (text: string, method: string): ResponseHead {
  const lines = text.split('\n')
  const statusLine = stripCR(lines[0])
  const m = STATUS_LINE.exec(statusLine)
  if (m === null) throw bad(`invalid status line "${statusLine.slice(0, 64)}"`)
  const minor = m[1] === '1'
  const status = Number(m[2])
  const rawHeaders: string[] = []
  let contentLength = -1
  let chunked = false
  let hasTE = false
  let connection = ''
  let keepAliveHint = 0
  for (let i = 1; i < lines.length; i++) {
    const line = stripCR(lines[i])
    const colon = line.indexOf(':')
    if (colon <= 0) throw bad(`invalid header line "${line.slice(0, 64)}"`)
    const name = line.slice(0, colon)
    if (!TOKEN.test(name)) throw bad(`invalid header name "${name.slice(0, 64)}"`)
    const value = line.slice(colon + 1).trim()
    if (BAD_VALUE.test(value)) throw bad(`invalid value of header "${name}"`)
    rawHeaders.push(name, value)
    switch (name.length) {
      case 10:
        if (name.toLowerCase() === 'connection') connection += ',' + value.toLowerCase()
        else if (name.toLowerCase() === 'keep-alive') keepAliveHint = hintMs(value)
        break
      case 14:
        if (name.toLowerCase() === 'content-length') {
          if (!/^\d{1,15}$/.test(value)) throw bad(`invalid Content-Length "${value.slice(0, 32)}"`)
          // A second one, even equal, would reach the client twice: refused, as nginx and undici do.
          if (contentLength !== -1) throw bad('duplicate Content-Length header')
          contentLength = Number(value)
        }
        break
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') {
          hasTE = true
          // Only the last coding decides: chunked must be last, or the body runs until close.
          chunked = /(?:^|,)\s*chunked\s*$/i.test(value)
        }
        break
    }
  }
  if (hasTE && contentLength !== -1) throw bad('"Content-Length" and "Transfer-Encoding" at the same time')
  let framing: Framing
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) framing = Framing.None
  else if (hasTE) framing = chunked ? Framing.Chunked : Framing.UntilClose
  else if (contentLength !== -1) framing = Framing.Length
  else framing = Framing.UntilClose
  const keepAlive = framing !== Framing.UntilClose &&
    (minor ? !/(?:^|,)\s*close\s*(?:,|$)/.test(connection) : /(?:^|,)\s*keep-alive\s*(?:,|$)/.test(connection))
  return { status, statusText: m[3] ?? '', rawHeaders, framing, length: contentLength, keepAlive, keepAliveHint }
}

function stripCR (line: string): string {
  return line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line
}

function hintMs (value: string): number {
  const m = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(value)
  return m === null ? 0 : Number(m[1]) * 1000
}

function bad (message: string): H1Error {
  return new H1Error('PROXYCTL_H1_BAD_RESPONSE', message)
}
