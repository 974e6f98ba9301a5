/**
 * What nginx refuses in a request head that Node's parser lets through, checked once the head is
 * parsed and before anything else runs: the HTTP version, TRACE, a second Host, Transfer-Encoding
 * on HTTP/1.0, too many header lines, and lines that would not fit nginx's header buffers.
 */
import type { IncomingMessage } from 'node:http'
import type { ResolvedConnectionLimits } from '../config/limits.js'
import { BadRequestError } from '../errors.js'

/**
 * nginx's status for a head too large for its buffers: answered as 400 with its own page
 * ("Request Header Or Cookie Too Large"); error_page can name it, as in nginx.
 */
export const REQUEST_HEADER_TOO_LARGE = 494

/** nginx's client_header_buffer_size default: the buffer a head is read into first. */
const CLIENT_HEADER_BUFFER = 1024

/** The head's problem as nginx words it, or undefined when nginx would read on. */
export function checkRequestHead (req: IncomingMessage, limits: ResolvedConnectionLimits): BadRequestError | undefined {
  // HTTP/2 requests come through Node's compatibility API (server/http2.ts), with their stream.
  if (req.httpVersionMajor !== 1 && (req.httpVersionMajor !== 2 || !('stream' in req))) {
    return req.httpVersionMajor > 1
      ? new BadRequestError(`client sent unsupported HTTP version ${req.httpVersion}`, 505)
      : new BadRequestError('client sent invalid request')
  }
  if (req.method === 'TRACE') return new BadRequestError('client sent TRACE method', 405)
  const raw = req.rawHeaders
  if (raw.length > limits.maxHeaders * 2) return new BadRequestError('client sent too many header lines', REQUEST_HEADER_TOO_LARGE, 'maxHeaders')
  let hosts = 0
  let te = false
  let bytes = 0
  let underscores = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    bytes += name.length + (raw[i + 1] as string).length + 4
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') te = true
    else if (name.includes('_')) underscores = true
  }
  if (underscores && !limits.underscoresInHeaders) dropUnderscoreHeaders(req)
  if (hosts > 1) return new BadRequestError('client sent duplicate host header')
  if (te && req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return new BadRequestError('client sent "Transfer-Encoding" in HTTP/1.0 request')
  const line = requestLineLength(req)
  if (line + bytes + 2 > CLIENT_HEADER_BUFFER) return checkHeaderBuffers(line, raw, limits.largeClientHeaderBuffers)
  return undefined
}

/**
 * nginx's underscores_in_headers off: a header whose name has `_` is ignored, so `X_Remote_User`
 * cannot pass for `X-Remote-User` at a CGI, WSGI or Rack app, which read both as one variable.
 */
function dropUnderscoreHeaders (req: IncomingMessage): void {
  const raw = req.rawHeaders
  let to = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (name.includes('_')) { delete req.headers[name.toLowerCase()]; continue }
    raw[to++] = name
    raw[to++] = raw[i + 1] as string
  }
  raw.length = to
}

function requestLineLength (req: IncomingMessage): number {
  return (req.method?.length ?? 0) + 1 + (req.url?.length ?? 0) + 1 + 8 + 2
}

/**
 * Replays how nginx packs a head into its buffers (ngx_http_alloc_large_header_buffer): lines
 * fill the first 1 KiB buffer, then each line that does not fit where it starts moves whole to a
 * fresh large buffer; a line longer than one large buffer, or a head that needs more of them
 * than `number`, is refused. Header lines are counted as `Name: value` plus CRLF, as a client
 * usually writes them (Node keeps no other record of the spacing).
 */
function checkHeaderBuffers (requestLine: number, raw: string[], buffers: { number: number, size: number }): BadRequestError | undefined {
  let room = CLIENT_HEADER_BUFFER
  let large = 0
  const place = (length: number, what: 'request line' | 'header line' | 'header end'): BadRequestError | undefined => {
    if (length <= room) { room -= length; return undefined }
    if (length > buffers.size && what !== 'header end') {
      return what === 'request line'
        ? new BadRequestError('client sent too long URI', 414, 'largeClientHeaderBuffers')
        : new BadRequestError('client sent too long header line', REQUEST_HEADER_TOO_LARGE, 'largeClientHeaderBuffers')
    }
    if (large === buffers.number) return new BadRequestError('client sent too large request headers', REQUEST_HEADER_TOO_LARGE, 'largeClientHeaderBuffers')
    large++
    room = buffers.size - length
    return undefined
  }
  const refused = place(requestLine, 'request line')
  if (refused !== undefined) return refused
  for (let i = 0; i < raw.length; i += 2) {
    const refused = place((raw[i] as string).length + (raw[i + 1] as string).length + 4, 'header line')
    if (refused !== undefined) return refused
  }
  return place(2, 'header end')
}
