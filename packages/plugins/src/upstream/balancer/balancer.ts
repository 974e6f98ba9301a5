import type { Peer } from '../peer.js'

/** What a balancer may use to choose a peer for one request. */
export interface SelectInput {
  /** The rendered hash key (`hash` policies). Empty or missing: round robin, as nginx. */
  key?: string
  /** The client's address (`ip-hash`), as `remoteAddress` gives it: `1.2.3.4`, `::1`, `::ffff:1.2.3.4`. */
  clientAddress?: string
  /**
   * Peers this request already tried (next-upstream retries): never chosen again.
   * `PeerGroup.select` adds the peer it returns, so pass the same Set on each retry.
   */
  tried: ReadonlySet<Peer>
  /** Opaque request object handed to custom policies (e.g. the RequestContext). */
  request?: unknown
}

/**
 * A selection algorithm over one fixed list of peers (a group's primaries, or its backups).
 * `select` returns a peer that is available at `now` and not in `input.tried`, or null when
 * it finds none. It may update balancing state (current/effective weights) but not health
 * state (`PeerGroup` calls `markSelected` and adds to `tried`).
 */
export interface Balancer {
  readonly peers: readonly Peer[]
  select (input: SelectInput, now: number): Peer | null
}

/** Available now and not yet tried by this request. */
export function usable (peer: Peer, input: SelectInput, now: number): boolean {
  // The one server of a single group is tried again (nginx skips its `tried` bitmap there); only
  // an extra try for a failed cached connection gets that far (see UpstreamExchange.canRetry).
  return (peer.single || !input.tried.has(peer)) && peer.isAvailable(now)
}

/** Sum of configured weights (nginx's `total_weight`, down peers included). */
export function totalWeight (peers: readonly Peer[]): number {
  let w = 0
  for (const p of peers) w += p.weight
  return w
}

/** The peer owning point `w` (0 <= w < totalWeight) when each peer owns `weight` consecutive points. */
export function peerAtWeight (peers: readonly Peer[], w: number): Peer {
  let i = 0
  while (w >= peers[i].weight) {
    w -= peers[i].weight
    i++
  }
  return peers[i]
}
