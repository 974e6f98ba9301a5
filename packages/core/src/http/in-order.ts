import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/** Node's own field: the response that owns the connection's socket now. */
type HttpSocket = Duplex & { _httpMessage?: ServerResponse | null }

/**
 * Calls `then` once no response owns the connection, so what comes next (an upgrade, the answer
 * to bytes the parser refused) goes out after the answers to the requests before it, as nginx
 * answers a pipeline in order. Node queues the responses of pipelined requests and gives the
 * socket to the next one when the current one finishes (in its own 'finish' listener, registered
 * before ours, so the next owner is in place when we look again). A connection closed meanwhile
 * calls `then` too; it finds the socket destroyed.
 */
export function whenNoResponsePending (socket: Duplex, then: () => void): void {
  const pending = (socket as HttpSocket)._httpMessage
  if (pending == null) { then(); return }
  const next = (): void => {
    pending.removeListener('finish', next)
    pending.removeListener('close', next)
    whenNoResponsePending(socket, then)
  }
  pending.once('finish', next)
  pending.once('close', next)
}
