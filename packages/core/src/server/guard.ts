import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { InternalError, ProxyctlError } from '../errors.js'
import { errorPageBody, sendErrorPage, statusReason, wireStatus } from '../http/error-page.js'
import { REQUEST_HEADER_TOO_LARGE } from '../http/request-head.js'
import type { ResolvedConnectionLimits } from '../config/limits.js'
import { whenNoResponsePending } from '../http/in-order.js'

/**
 * What happens when handling one request or one connection fails, in one place: a log line with
 * the code, the client address and the request line (as nginx's error log gives them), an answer
 * or a cut connection for that client, and never the process.
 */

/** `GET /a?b HTTP/1.1`: the request line as the client sent it. */
export function requestLine (req: IncomingMessage, target: string | undefined): string {
  return `${req.method ?? '-'} ${target ?? '-'} HTTP/${req.httpVersion}`
}

/** The one error line of a failed request or connection: code, client, request line, the error. */
function logFailure (log: FastifyBaseLogger, req: IncomingMessage, client: string | undefined, target: string | undefined, err: unknown, what: 'request' | 'connection'): void {
  const error = err instanceof ProxyctlError ? err : new InternalError(err instanceof Error ? err.message : String(err), { cause: err })
  const line = requestLine(req, target)
  log.error({ code: error.code, client, request: line, err: error.cause ?? error },
    `${error.message} while handling the ${what}, client: ${client ?? '-'}, request: "${line}"`)
}

/**
 * Handling a request threw (a bug in proxyctl or a plugin): 500 and close, as nginx answers its
 * own internal errors, or the connection cut when the answer was already under way.
 * `target` is the request target as received (routing rewrites `req.url`); `headers`: the
 * addHeaders in force (their `always` ones).
 */
export function failRequest (log: FastifyBaseLogger, req: IncomingMessage, res: ServerResponse, target: string | undefined, err: unknown,
  headers?: Record<string, string | string[]>): void {
  const client = req.socket?.remoteAddress
  if (clientLeft(req, err)) {
    // Not a bug: the client went away mid-answer (a stream reports it as an error). nginx's 499.
    log.info({ code: 'PROXYCTL_CLIENT_CLOSED', client, request: requestLine(req, target) },
      `client prematurely closed connection, client: ${client ?? '-'}, request: "${requestLine(req, target)}"`)
    res.destroy()
    return
  }
  logFailure(log, req, client, target, err, 'request')
  try {
    if (res.headersSent) res.destroy()
    else sendErrorPage(res, 500, { ...headers, connection: 'close' })
  } catch {
    res.destroy()
  }
}

/** Handling an Upgrade request's connection threw before a response was bound to it: cut it. */
export function failConnection (log: FastifyBaseLogger, req: IncomingMessage, socket: Duplex, target: string | undefined, err: unknown): void {
  logFailure(log, req, (socket as { remoteAddress?: string }).remoteAddress, target, err, 'connection')
  socket.destroy()
}

/** Node's answers to what its parser refuses (its defaults), as nginx's pages. */
const PARSER_STATUS: Record<string, number> = {
  // A head over every header buffer: nginx's 494 page (answered 400), or 414 for the request line.
  HPE_HEADER_OVERFLOW: REQUEST_HEADER_TOO_LARGE,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413
}

/** Connection errors that are the client leaving, not a bad request. */
const CLIENT_LEFT = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT'])

/** Whether `err` only says the client's connection went away while it was being answered. */
function clientLeft (req: IncomingMessage, err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code
  if (code === 'ERR_STREAM_PREMATURE_CLOSE' || (code !== undefined && CLIENT_LEFT.has(code))) return true
  return req.socket?.destroyed === true
}

type ParserError = Error & { code?: string, reason?: string }
type ClientSocket = Duplex & {
  remoteAddress?: string
  /** Node's: the response that owns the socket now, and the parser with the request it is reading. */
  _httpMessage?: ServerResponse | null
  parser?: { incoming?: IncomingMessage | null } | null
  [kRefused]?: true
}
const kRefused = Symbol('proxyctl.refused')

/**
 * Node's 'clientError': its parser refused the bytes (or the client went away). One log line and
 * the status Node would send, then the connection is closed. Bad bytes where a new request
 * should begin are answered after the requests before them, as nginx answers a pipeline in
 * order; a request cut or malformed inside its body (or the client's end of the connection) is
 * ended at once, which aborts what it started upstream. (Node's errored parser reports every
 * later chunk again: one answer per connection.)
 */
/** Logs an answer the front door wrote on the socket itself (the access log); `before`: the socket's bytesWritten before it. */
export type RefusalLog = (socket: Socket, req: IncomingMessage | undefined, target: string, status: number, head: number, before: number) => void

export function answerClientError (log: FastifyBaseLogger, err: ParserError, socket: ClientSocket, limits: ResolvedConnectionLimits, logRefusal?: RefusalLog, rejected?: (limit: string) => void): void {
  if (socket[kRefused] === true) return
  socket[kRefused] = true
  const code = err.code ?? 'unknown'
  if (CLIENT_LEFT.has(code)) {
    log.debug({ code: 'PROXYCTL_BAD_REQUEST', client: socket.remoteAddress, reason: code }, `client closed the connection (${code})`)
    socket.destroy()
    return
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    // nginx closes without an answer when client_header_timeout passes (it logs 408).
    log.info({ code: 'PROXYCTL_CLIENT_TIMEOUT', client: socket.remoteAddress, limit: 'clientHeaderTimeout', clientHeaderTimeout: limits.clientHeaderTimeout },
      `client timed out while reading client request headers (clientHeaderTimeout ${limits.clientHeaderTimeout} ms), client: ${socket.remoteAddress ?? '-'}`)
    rejected?.('clientHeaderTimeout')
    socket.destroy()
    return
  }
  let status = PARSER_STATUS[code] ?? 400
  if (code === 'HPE_HEADER_OVERFLOW' && requestLineTooLong(err, limits.largeClientHeaderBuffers.size)) status = 414
  // llhttp knows HTTP/1.x and 2.0 only; nginx answers any later major version 505.
  if (code === 'HPE_INVALID_VERSION' && LATER_HTTP.test(String((err as { rawPacket?: Buffer }).rawPacket?.subarray(0, 8192).toString('latin1') ?? ''))) status = 505
  const reason = err.reason ?? err.message
  log.info({ code: 'PROXYCTL_BAD_REQUEST', client: socket.remoteAddress, reason, parserCode: code, status, ...(code === 'HPE_HEADER_OVERFLOW' ? { limit: 'largeClientHeaderBuffers' } : {}) },
    `client sent a request the parser refused (${reason}), answered ${status}, client: ${socket.remoteAddress ?? '-'}`)
  if (code === 'HPE_HEADER_OVERFLOW') rejected?.('largeClientHeaderBuffers')
  const reading = socket.parser?.incoming
  const answer = (): void => {
    const before = (socket as Socket).bytesWritten ?? 0
    const head = writeAnswer(socket, status)
    logRefusal?.(socket as Socket, undefined, firstLine(err), status, head, before)
  }
  if (code === 'HPE_INVALID_EOF_STATE' || (reading != null && !reading.complete)) {
    if (socket._httpMessage == null || !socket._httpMessage.headersSent) answer()
    socket.destroy()
    return
  }
  whenNoResponsePending(socket, () => {
    answer()
    socket.destroy()
  })
}

/** The request line of the bytes the parser refused, as far as they go (for the access log's $request). */
function firstLine (err: ParserError): string {
  const raw = (err as { rawPacket?: Buffer }).rawPacket
  if (raw === undefined) return ''
  const end = raw.subarray(0, 8192).findIndex((b) => b === 13 || b === 10)
  return raw.subarray(0, end === -1 ? Math.min(raw.length, 8192) : end).toString('latin1')
}

/** CONNECT: nginx does not tunnel; it answers 400 and closes, after the answers before it. */
export function refuseConnect (log: FastifyBaseLogger, req: IncomingMessage, socket: ClientSocket, logRefusal?: RefusalLog): void {
  log.info({ code: 'PROXYCTL_BAD_REQUEST', client: socket.remoteAddress, request: requestLine(req, req.url), status: 400 },
    `client sent invalid method CONNECT, answered 400, client: ${socket.remoteAddress ?? '-'}`)
  socket.on('error', () => {})
  whenNoResponsePending(socket, () => {
    const before = (socket as Socket).bytesWritten ?? 0
    const head = writeAnswer(socket, 400)
    logRefusal?.(socket as Socket, req, req.url ?? '', 400, head, before)
    socket.destroy()
  })
}

const LATER_HTTP = /^[^\r\n]* HTTP\/(?:[2-9]|[1-9]\d+)\.\d+\r?\n/

/** Whether the bytes Node refused for size are still the request line (no line end within one header buffer). */
function requestLineTooLong (err: ParserError, size: number): boolean {
  const raw = (err as { rawPacket?: Buffer }).rawPacket
  if (raw === undefined) return false
  const lf = raw.indexOf(10)
  return lf === -1 || lf > size
}

/** One write, then the caller destroys, as Node's own answer: a client that does not read cannot hold the connection. Returns the head's length. */
function writeAnswer (socket: Duplex, status: number): number {
  if (!socket.writable) return 0
  const body = errorPageBody(status)
  const wire = wireStatus(status)
  const head = `HTTP/1.1 ${wire} ${statusReason(wire)}\r\nDate: ${new Date().toUTCString()}\r\n` +
    `Content-Type: text/html\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]))
  return head.length
}
