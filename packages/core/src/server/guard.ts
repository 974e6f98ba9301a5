import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { InternalError, ProxyctlError } from '../errors.js'
import { errorPageBody, sendErrorPage, statusReason } from '../http/error-page.js'
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
 * `target` is the request target as received (routing rewrites `req.url`).
 */
export function failRequest (log: FastifyBaseLogger, req: IncomingMessage, res: ServerResponse, target: string | undefined, err: unknown): void {
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
    else sendErrorPage(res, 500, { connection: 'close' })
  } catch {
    res.destroy()
  }
}

/** Handling an Upgrade request's connection threw before a response was bound to it: cut it. */
export function failConnection (log: FastifyBaseLogger, req: IncomingMessage, socket: Duplex, target: string | undefined, err: unknown): void {
  logFailure(log, req, (socket as { remoteAddress?: string }).remoteAddress, target, err, 'connection')
  socket.destroy()
}

/** Node's answers to what its parser refuses (its defaults), as nginx-style pages. */
const PARSER_STATUS: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  ERR_HTTP_REQUEST_TIMEOUT: 408
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
export function answerClientError (log: FastifyBaseLogger, err: ParserError, socket: ClientSocket): void {
  if (socket[kRefused] === true) return
  socket[kRefused] = true
  const code = err.code ?? 'unknown'
  if (CLIENT_LEFT.has(code)) {
    log.debug({ code: 'PROXYCTL_BAD_REQUEST', client: socket.remoteAddress, reason: code }, `client closed the connection (${code})`)
    socket.destroy()
    return
  }
  const status = PARSER_STATUS[code] ?? 400
  const reason = err.reason ?? err.message
  log.info({ code: 'PROXYCTL_BAD_REQUEST', client: socket.remoteAddress, reason, parserCode: code, status },
    `client sent a request the parser refused (${reason}), answered ${status}, client: ${socket.remoteAddress ?? '-'}`)
  const reading = socket.parser?.incoming
  if (code === 'HPE_INVALID_EOF_STATE' || (reading != null && !reading.complete)) {
    if (socket._httpMessage == null || !socket._httpMessage.headersSent) writeAnswer(socket, status)
    socket.destroy()
    return
  }
  whenNoResponsePending(socket, () => {
    writeAnswer(socket, status)
    socket.destroy()
  })
}

/** One write, then the caller destroys, as Node's own answer: a client that does not read cannot hold the connection. */
function writeAnswer (socket: Duplex, status: number): void {
  if (!socket.writable) return
  const body = errorPageBody(status)
  const head = `HTTP/1.1 ${status} ${statusReason(status)}\r\nDate: ${new Date().toUTCString()}\r\n` +
    `Content-Type: text/html\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]))
}
