import { ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { TLSSocket } from 'node:tls'
import { whenNoResponsePending } from './in-order.js'

const kUpgrade = Symbol.for('proxyctl.upgrade')

/** The raw connection of an HTTP Upgrade request (WebSocket), for handlers that take it over. */
export interface UpgradeConnection {
  readonly socket: Duplex
  /** Bytes the client sent after the request head (the first frames, possibly). */
  readonly head: Buffer
}

type UpgradeRequest = IncomingMessage & { [kUpgrade]?: UpgradeConnection }
/** Node's own field: whether a response ends the connection. */
type LastResponse = ServerResponse & { _last?: boolean }

/**
 * An Upgrade request, answered in its turn on its connection.
 *
 * Node parses pipelined requests ahead of answering them and stops parsing at an Upgrade
 * request, which it hands over ('upgrade') while responses to earlier requests on the same
 * connection may still be pending. nginx answers in order, and so do we: `handle` is called once
 * the connection has no response pending (never, if the connection closes first), with a
 * response bound to the socket.
 *
 * The request then runs through its location's chain like any other (hooks may authenticate or
 * deny). A handler that tunnels takes the socket with `upgradeOf(request.raw)` and detaches it
 * from the response. Any other answer is written on that response, after which the connection
 * goes back to Node's HTTP parser with the bytes that followed the request head, as nginx keeps a
 * connection alive after answering an Upgrade it does not tunnel (or closes it, when the answer
 * says so).
 */
export function acceptUpgrade (server: Server, req: IncomingMessage, socket: Duplex, head: Buffer,
  handle: (req: IncomingMessage, res: ServerResponse) => void): void {
  // Node removed its own socket listeners when it handed the request over: errors, and the
  // 'drain' it passes on to the response writing, which earlier responses still pending need.
  socket.on('error', destroyOnError)
  socket.on('drain', drainPendingResponse)
  whenNoResponsePending(socket, () => {
    socket.removeListener('drain', drainPendingResponse)
    if (socket.destroyed || !socket.writable) { socket.destroy(); return }
    ;(req as UpgradeRequest)[kUpgrade] = { socket, head }
    const res = new ServerResponse(req)
    res.shouldKeepAlive = keepsAlive(req)
    res.assignSocket(socket as Socket)
    res.once('finish', () => {
      if (res.socket !== socket) return // a tunnel took the socket over
      res.detachSocket(socket as Socket)
      if ((res as LastResponse)._last === true || socket.destroyed) { (socket as Socket).destroySoon(); return }
      resumeHttp(server, socket as Socket, head)
    })
    handle(req, res)
  })
}

/**
 * Why an Upgrade request cannot be served, or undefined. Node hands an Upgrade request over
 * without its body (the bytes after the head are the new protocol's), so one that announces a
 * body is refused rather than answered with its body read as the next request.
 */
export function upgradeBodyError (req: IncomingMessage): string | undefined {
  const length = req.headers['content-length']
  if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
    return 'client sent an Upgrade request with a body'
  }
  return undefined
}

/** The upgrade connection of a request, or undefined for a plain request. */
export function upgradeOf (req: IncomingMessage): UpgradeConnection | undefined {
  return (req as UpgradeRequest)[kUpgrade]
}

function destroyOnError (this: Duplex): void { this.destroy() }

function drainPendingResponse (this: Duplex & { _httpMessage?: ServerResponse | null }): void {
  this._httpMessage?.emit('drain')
}

/** Whether the connection stays open after the answer (RFC 9112 9.3, as Node's parser decides it). */
function keepsAlive (req: IncomingMessage): boolean {
  const connection = req.headers.connection?.toLowerCase() ?? ''
  const has = (token: string): boolean => connection.split(',').some((t) => t.trim() === token)
  return req.httpVersion === '1.1' ? !has('close') : has('keep-alive')
}

/**
 * Gives the connection back to Node's HTTP server, as a new connection would arrive, with the
 * bytes read past the request head put back in front. (TLS connections enter Node's HTTP layer
 * through 'secureConnection', plain ones through 'connection'.)
 */
function resumeHttp (server: Server, socket: Socket, rest: Buffer): void {
  socket.removeListener('error', destroyOnError)
  if (rest.length > 0) socket.unshift(rest)
  server.emit(socket instanceof TLSSocket ? 'secureConnection' : 'connection', socket)
  socket.resume()
}
