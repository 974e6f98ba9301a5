import type { Peer } from '../peer.js'
import { usable, type Balancer, type SelectInput } from './balancer.js'
import { smoothWeighted } from './round-robin.js'

/**
 * nginx's least_conn (ngx_http_upstream_least_conn_module.c): the selectable peer with the
 * smallest `activeConnections / weight` (compared as `a.conns * b.weight < b.conns * a.weight`);
 * when several share that smallest ratio, smooth weighted round robin among them, starting
 * from the first of them in list order.
 */
export class LeastConnBalancer implements Balancer {
  constructor (readonly peers: readonly Peer[]) {}

  select (input: SelectInput, now: number): Peer | null {
    const peers = this.peers
    let best: Peer | null = null
    let bestIndex = 0
    let many = false

    for (let i = 0; i < peers.length; i++) {
      const peer = peers[i]
      if (!usable(peer, input, now)) continue
      if (best === null || peer.activeConnections * best.weight < best.activeConnections * peer.weight) {
        best = peer
        bestIndex = i
        many = false
      } else if (peer.activeConnections * best.weight === best.activeConnections * peer.weight) {
        many = true
      }
    }

    if (best === null || !many) return best

    const least = best
    return smoothWeighted(tail(peers, bestIndex), (peer) =>
      peer.activeConnections * least.weight === least.activeConnections * peer.weight && usable(peer, input, now))
  }
}

function * tail<T> (list: readonly T[], from: number): Iterable<T> {
  for (let i = from; i < list.length; i++) yield list[i]
}
