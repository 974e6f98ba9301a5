import type { Peer } from '../peer.js'
import { peerAtWeight, totalWeight, usable, type Balancer, type SelectInput } from './balancer.js'
import { RoundRobinBalancer } from './round-robin.js'

/** Hash rounds before giving up and using round robin, as nginx (hash, ip_hash, consistent hash). */
export const HASH_MAX_TRIES = 20

/**
 * nginx's walk for `hash` and `ip_hash`: each round folds the request's key into a running value,
 * the peer owning `value % totalWeight` (down peers included) is taken unless tried or unavailable;
 * after 20 rounds, or with fewer than two peers or no key, round robin. Subclasses say what the key
 * is, where the value starts and how a round folds the key in.
 */
export abstract class RehashBalancer<K> implements Balancer {
  private readonly rr: RoundRobinBalancer
  private readonly total: number

  constructor (readonly peers: readonly Peer[]) {
    this.rr = new RoundRobinBalancer(peers)
    this.total = totalWeight(peers)
  }

  /** The key of a request; undefined sends it to round robin. */
  protected abstract keyOf (input: SelectInput): K | undefined
  /** The running value before the first round. */
  protected abstract readonly seed: number
  /** The running value after round `round`. */
  protected abstract fold (value: number, key: K, round: number): number

  select (input: SelectInput, now: number): Peer | null {
    const key = this.peers.length < 2 ? undefined : this.keyOf(input)
    if (key === undefined) return this.rr.select(input, now)
    let value = this.seed
    for (let round = 0; round <= HASH_MAX_TRIES; round++) {
      value = this.fold(value, key, round)
      const peer = peerAtWeight(this.peers, value % this.total)
      if (usable(peer, input, now)) return peer
    }
    return this.rr.select(input, now)
  }
}
