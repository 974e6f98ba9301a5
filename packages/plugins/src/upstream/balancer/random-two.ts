import type { Peer } from '../peer.js'
import { peerAtWeight, totalWeight, usable, type Balancer, type SelectInput } from './balancer.js'
import { RoundRobinBalancer } from './round-robin.js'

/** Random draws before giving up and using round robin, as nginx. */
export const RANDOM_MAX_TRIES = 20

export interface RandomTwoOptions {
  /** Uniform in [0, 1). Default Math.random; tests pass a seeded one. */
  random?: () => number
}

/**
 * nginx's `random two least_conn` (ngx_http_upstream_get_random2_peer): draw peers at random in
 * proportion to weight (down peers' weight included, redrawn) until two different selectable,
 * untried ones are found, then take the one with fewer `activeConnections / weight`; on a tie
 * the second. Draws that hit the first one again, or a tried or unavailable peer, count
 * against a budget of 20, after which round robin. Fewer than two peers: round robin.
 */
export class RandomTwoBalancer implements Balancer {
  private readonly rr: RoundRobinBalancer
  private readonly total: number
  private readonly random: () => number

  constructor (readonly peers: readonly Peer[], options: RandomTwoOptions = {}) {
    this.rr = new RoundRobinBalancer(peers)
    this.total = totalWeight(peers)
    this.random = options.random ?? Math.random
  }

  select (input: SelectInput, now: number): Peer | null {
    if (this.peers.length < 2) return this.rr.select(input, now)
    let first: Peer | null = null
    for (let tries = 0; tries <= RANDOM_MAX_TRIES; tries++) {
      const peer = peerAtWeight(this.peers, Math.floor(this.random() * this.total))
      if (peer === first || !usable(peer, input, now)) continue
      if (first === null) {
        first = peer
        continue
      }
      return peer.activeConnections * first.weight > first.activeConnections * peer.weight ? first : peer
    }
    return this.rr.select(input, now)
  }
}
