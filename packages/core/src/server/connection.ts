import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import type { ResolvedConfig, ResolvedListen } from '../config/model.js'
import type { ResolvedRequestLimits } from '../config/limits.js'
import type { ExchangeRecord } from '../log/exchange-record.js'

const NODE_KEEP_ALIVE_MARGIN = 1000

let lastConnectionId = 0
/** The next $connection number (for a connection refused before it was counted, too). */
export function nextConnectionId (): number { return ++lastConnectionId }

/**
 * Node keeps an idle connection open 1 s longer than its keepAliveTimeout (its margin against
 * clients that reuse a connection as it closes); nginx closes it at keepalive_timeout. Below
 * that margin ClientConnections sets each connection's timer itself.
 */
export function nodeKeepAliveTimeout (ms: number): number {
  return ms > NODE_KEEP_ALIVE_MARGIN ? ms - NODE_KEEP_ALIVE_MARGIN : ms
}

/** What the listener keeps per client connection (beside the socket: adding fields to Node's sockets slows every access to them). */
interface Connection {
  /** nginx's $connection: a serial number, unique in the process. */
  readonly id: number
  served: number
  sendTimeout: number
  /** When the sweep first saw unread bytes not moving; 0: not stalled. */
  stalledSince: number
  flushed: number
  /** An Upgrade request came: the socket is a tunnel's now (stub_status counts it as writing). */
  upgraded: boolean
}

/** A listener's client connections at one instant, as nginx's stub_status sees them, and its bytes. */
export interface ConnectionFigures { reading: number, writing: number, waiting: number, received: number, sent: number }

/**
 * The client connections of one listener and the limits nginx applies to them per location once
 * a request is routed: keepalive_requests and keepalive_timeout (0: no keep-alive), and
 * send_timeout, the longest a client may leave a response unread between two successful writes.
 * A sweep finds stalled sends instead of a timer per write, so the per-request cost is one map
 * lookup whatever writes the answer (the fast path, Fastify, a stream's pipe).
 */
export class ClientConnections {
  readonly #open = new Map<Socket, Connection>()
  readonly #timer: NodeJS.Timeout
  /** The keep-alive timeout Node's own timer keeps exactly (see nodeKeepAliveTimeout); others are set per answer. */
  readonly #nodeKeepAlive: number
  /** Bytes of connections already closed (open ones are read from their sockets when asked). */
  #closedReceived = 0
  #closedSent = 0

  constructor (private readonly listen: ResolvedListen, private readonly log: FastifyBaseLogger, sweepMs: number, private readonly rejected?: (limit: string) => void) {
    this.#timer = setInterval(() => { this.sweep() }, sweepMs).unref()
    const listener = listen.defaultServer.limits.keepaliveTimeout
    this.#nodeKeepAlive = nodeKeepAliveTimeout(listener) === listener ? -1 : listener
  }

  /** A request on its connection: counts it (in its record too) and applies its location's limits (its server's if not routed). */
  served (limits: ResolvedRequestLimits, socket: Socket, res: ServerResponse, record: ExchangeRecord): void {
    const conn = this.#connection(socket, limits)
    const served = ++conn.served
    record.connection = conn.id
    record.connectionRequests = served
    conn.sendTimeout = limits.sendTimeout
    // nginx sends no Keep-Alive header; Node would announce its own timeout.
    ;(res as ServerResponse & { _keepAliveTimeout: number })._keepAliveTimeout = 0
    if (served >= limits.keepaliveRequests || limits.keepaliveTimeout === 0) {
      res.shouldKeepAlive = false
    } else if (limits.keepaliveTimeout !== this.#nodeKeepAlive) {
      // Node arms the listener's keep-alive timer when the answer is complete (in a 'finish'
      // listener added before ours); this location's own timeout replaces it.
      res.once('finish', () => {
        if (!socket.destroyed && (socket as { _httpMessage?: unknown })._httpMessage == null) socket.setTimeout(limits.keepaliveTimeout)
      })
    }
  }

  /**
   * A request on an HTTP/2 connection (`socket`: the connection's own, not the session's stand-in): numbered and counted per
   * connection, and the connection's unsent bytes watched for sendTimeout. keepalive_requests and
   * keepalive_timeout are the session's (http2.ts).
   */
  servedH2 (limits: ResolvedRequestLimits, socket: Socket | undefined, record: ExchangeRecord): void {
    if (socket === undefined) return
    const conn = this.#connection(socket, limits)
    record.connection = conn.id
    record.connectionRequests = ++conn.served
    conn.sendTimeout = limits.sendTimeout
  }

  /** Numbers a request on `socket` without applying limits (an Upgrade request). */
  identify (socket: Socket, limits: ResolvedRequestLimits, record: ExchangeRecord): void {
    const conn = this.#connection(socket, limits)
    record.connection = conn.id
    record.connectionRequests = ++conn.served
    conn.upgraded = true
  }

  /** What the metrics report, counted now; `open`: every connection the server holds (those without a request yet too). */
  figures (open: number): ConnectionFigures {
    let writing = 0
    let waiting = 0
    let received = this.#closedReceived
    let sent = this.#closedSent
    for (const [socket, conn] of this.#open) {
      if (conn.upgraded || (socket as { _httpMessage?: unknown })._httpMessage != null) writing++
      else waiting++
      const [read, written] = bytesOf(socket)
      received += read
      sent += written
    }
    return { reading: Math.max(0, open - writing - waiting), writing, waiting, received, sent }
  }

  #connection (socket: Socket, limits: ResolvedRequestLimits): Connection {
    let conn = this.#open.get(socket)
    if (conn === undefined) {
      conn = { id: nextConnectionId(), served: 0, sendTimeout: limits.sendTimeout, stalledSince: 0, flushed: 0, upgraded: false }
      this.#open.set(socket, conn)
      socket.once('close', () => {
        this.#open.delete(socket)
        const [read, written] = bytesOf(socket)
        this.#closedReceived += read
        this.#closedSent += written
      })
    }
    return conn
  }

  private sweep (): void {
    const now = Date.now()
    for (const [socket, conn] of this.#open) {
      const pending = socket.writableLength
      if (pending === 0) { conn.stalledSince = 0; continue }
      const flushed = socket.bytesWritten - pending
      if (conn.stalledSince === 0 || flushed !== conn.flushed) {
        conn.stalledSince = now
        conn.flushed = flushed
        continue
      }
      if (now - conn.stalledSince < conn.sendTimeout) continue
      const limit = conn.sendTimeout
      this.log.info({ code: 'PROXYCTL_CLIENT_TIMEOUT', client: socket.remoteAddress, limit: 'sendTimeout', sendTimeout: limit, pending },
        `client timed out while sending response to client (sendTimeout ${limit} ms, ${pending} bytes unread), client: ${socket.remoteAddress ?? '-'}`)
      this.rejected?.('sendTimeout')
      socket.destroy()
    }
  }

  close (): void {
    clearInterval(this.#timer)
  }
}

/** How often the sweep runs: often enough that the shortest sendTimeout in the config is kept within a quarter of itself, at most once a second. */
export function sendSweepInterval (config: ResolvedConfig): number {
  let shortest = config.limits.sendTimeout
  for (const server of config.servers) {
    shortest = Math.min(shortest, server.limits.sendTimeout)
    for (const loc of server.all) shortest = Math.min(shortest, loc.limits.sendTimeout)
  }
  return Math.min(1000, Math.max(25, Math.floor(shortest / 4)))
}

/**
 * Bytes read and written on `socket`: the connection's own socket, HTTP/2's too (http2.ts
 * connectionSocketOf; the session's stand-in would throw once the session let it go).
 */
function bytesOf (socket: Socket): [number, number] {
  return [socket.bytesRead, socket.bytesWritten]
}
