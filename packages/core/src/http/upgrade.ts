import { ServerResponse, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'

const kUpgrade = Symbol.for('proxyctl.upgrade')

/** The raw connection of an HTTP Upgrade request (WebSocket), for handlers that take it over. */
export interface UpgradeConnection {
  readonly socket: Duplex
  /** Bytes the client sent after the request head (the first frames, possibly). */
  readonly head: Buffer
}

type UpgradeRequest = IncomingMessage & { [kUpgrade]?: UpgradeConnection }

/**
 * Turns an 'upgrade' event into an ordinary request: the location's whole Fastify chain runs
 * (its hooks may authenticate or deny), and a handler that tunnels upgrades takes the socket
 * with `upgradeOf(request.raw)`. Any other handler answers on a response bound to the socket,
 * which is closed afterwards, as nginx answers an upgrade it does not proxy.
 */
export function upgradeAsRequest (req: IncomingMessage, socket: Duplex, head: Buffer): ServerResponse {
  (req as UpgradeRequest)[kUpgrade] = { socket, head }
  const res = new ServerResponse(req)
  res.shouldKeepAlive = false
  res.assignSocket(socket as never)
  res.once('finish', () => { socket.end() })
  socket.on('error', () => { socket.destroy() })
  return res
}

/** The upgrade connection of a request, or undefined for a plain request. */
export function upgradeOf (req: IncomingMessage): UpgradeConnection | undefined {
  return (req as UpgradeRequest)[kUpgrade]
}
