import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { RequestContext } from '../routing/request-context.js'
import type { UpstreamMeter } from '../metrics/proxy-metrics.js'

/** Where a response carries its request's record (set by the listener, read by whoever answers). */
export const kRecord = Symbol('proxyctl.record')

/** The record of the request `res` answers, if the listener made one. */
export function recordOf (res: ServerResponse): ExchangeRecord | undefined {
  return (res as ServerResponse & { [kRecord]?: ExchangeRecord })[kRecord]
}

/** One try at one upstream server, as nginx's upstream state: times in ms from the try's start, -1 when not reached. */
export interface UpstreamTry {
  /** The server's address, as `$upstream_addr` names it. */
  readonly addr: string
  /** Its answer's status; 502 / 504 when the try failed (as nginx notes them); 0: none yet. */
  status: number
  /** performance.now() when the try began. */
  readonly start: number
  connect: number
  header: number
  response: number
  /** The server's metrics series, when metrics are on. */
  readonly meter: UpstreamMeter | undefined
}

/**
 * What one client request was, in the one place the access log (and later metrics) read it:
 * when it began, what was answered and how many bytes, the upstream tries. Made by the listener
 * for every request (the front door's refusals too), filled by the proxy as it tries servers,
 * completed (`end`, `status`, bytes) once, when the answer is over.
 */
export class ExchangeRecord {
  /** Date.now() when the request's head was read. */
  readonly start: number
  readonly socket: Socket
  /** The request target as the client sent it (routing rewrites req.url). */
  readonly target: string
  readonly req: IncomingMessage | undefined
  /** The client socket's bytesWritten before this answer (one answer at a time per connection); read only when a log will use it (the getter copies the socket's write queue). */
  readonly written: number
  ctx: RequestContext | undefined = undefined
  /** The status to log when it is not the wire's (nginx logs 494 for its 400 "Request Header Too Large"). */
  loggedStatus = 0
  /** $connection and $connection_requests. */
  connection = 0
  connectionRequests = 1
  /** Upstream tries in order; undefined: no upstream was asked. */
  tries: UpstreamTry[] | undefined = undefined
  /** `$upstream_cache_status` (MISS, HIT, ...); undefined: no cache was asked. */
  cacheStatus: string | undefined = undefined
  /** Set by `complete`. */
  end = 0
  status = 0
  bytesSent = 0
  bodyBytesSent = 0
  /** Protocol for `$ssl_protocol` once TLS reports it (a hook for the TLS work: undefined today). */
  sslProtocol: string | undefined = undefined
  /** The connection left HTTP (a WebSocket tunnel): the tunnel writes the line when it closes, not the response. */
  tunneled = false
  /** Writes the access line (set by the listener when an access log is on). */
  log: ((r: ExchangeRecord) => void) | undefined = undefined

  constructor (socket: Socket, req: IncomingMessage | undefined, target: string, written: number) {
    this.start = Date.now()
    this.socket = socket
    this.req = req
    this.target = target
    this.written = written
  }

  /** The answer is over (sent, or cut): status and bytes from the response. */
  complete (res: ServerResponse): void {
    this.end = Date.now()
    this.status = this.loggedStatus !== 0 ? this.loggedStatus : res.headersSent ? res.statusCode : 499
    // An HTTP/2 answer shares its connection: its body is what its response counted (no frames or HPACK head in either figure).
    const streamBytes = (res as { bodyBytes?: number }).bodyBytes
    if (streamBytes !== undefined) { this.bytesSent = streamBytes; this.bodyBytesSent = streamBytes; return }
    const headLength = (res as unknown as { _header: string | null })._header?.length ?? 0
    this.bytesSent = Math.max(0, this.socket.bytesWritten - this.written)
    this.bodyBytesSent = Math.max(0, this.bytesSent - headLength)
  }

  /** A tunnel or a front-door answer written on the socket itself: `head` bytes of head, the rest body. */
  completeRaw (status: number, head: number): void {
    this.end = Date.now()
    this.status = status
    this.bytesSent = Math.max(0, this.socket.bytesWritten - this.written)
    this.bodyBytesSent = Math.max(0, this.bytesSent - head)
  }

  /** Starts an upstream try at `addr`. */
  beginTry (addr: string, now: number, meter?: UpstreamMeter): UpstreamTry {
    const t: UpstreamTry = { addr, status: 0, start: now, connect: -1, header: -1, response: -1, meter }
    if (this.tries === undefined) this.tries = [t]
    else this.tries.push(t)
    return t
  }
}

/** The upstream variables nginx has, each try's value joined by ", " (undefined: no upstream asked). */
export type UpstreamVariable = 'upstream_addr' | 'upstream_status' | 'upstream_response_time' | 'upstream_connect_time' | 'upstream_header_time'

const seconds = (ms: number): string => (ms < 0 ? '-' : (ms / 1000).toFixed(3))
const TRY_VALUE: Record<UpstreamVariable, (t: UpstreamTry) => string> = {
  upstream_addr: (t) => t.addr,
  upstream_status: (t) => (t.status === 0 ? '-' : String(t.status)),
  upstream_response_time: (t) => seconds(t.response),
  upstream_connect_time: (t) => seconds(t.connect),
  upstream_header_time: (t) => seconds(t.header)
}
export const UPSTREAM_VARIABLES = Object.keys(TRY_VALUE) as UpstreamVariable[]

export function upstreamValue (r: ExchangeRecord | undefined, name: UpstreamVariable): string | undefined {
  const list = r?.tries
  if (list === undefined) return undefined
  const value = TRY_VALUE[name]
  let out = value(list[0] as UpstreamTry)
  for (let i = 1; i < list.length; i++) out += ', ' + value(list[i] as UpstreamTry)
  return out
}
