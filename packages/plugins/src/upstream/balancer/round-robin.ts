import type { Peer } from '../peer.js'
import { usable, type Balancer, type SelectInput } from './balancer.js'

/**
 * nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every selectable peer's
 * `currentWeight` grows by its `effectiveWeight`; the largest wins (first in list order on a
 * tie) and loses the sum of the effective weights. Weights 5:1:1 give `a a b a c a a`.
 */
export class RoundRobinBalancer implements Balancer {
  constructor (readonly peers: readonly Peer[]) {}

  select (input: SelectInput, now: number): Peer | null {
    return smoothWeighted(this.peers, (p) => usable(p, input, now))
  }
}

/** One smooth weighted round robin step over the peers `eligible` accepts, in list order. */
export function smoothWeighted (peers: Iterable<Peer>, eligible: (peer: Peer) => boolean): Peer | null {
  let best: Peer | null = null
  let total = 0
  for (const peer of peers) {
    if (!eligible(peer)) continue
    peer.currentWeight += peer.effectiveWeight
    total += peer.effectiveWeight
    if (peer.effectiveWeight < peer.weight) peer.effectiveWeight++
    if (best === null || peer.currentWeight > best.currentWeight) best = peer
  }
  if (best !== null) best.currentWeight -= total
  return best
}
