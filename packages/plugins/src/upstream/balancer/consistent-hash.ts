import type { Peer } from '../peer.js'
import { crc32 } from '../crc32.js'
import { usable, type Balancer, type SelectInput } from './balancer.js'
import { HASH_MAX_TRIES, RehashBalancer } from './rehash.js'
import { RoundRobinBalancer, smoothWeighted } from './round-robin.js'

/** Ring points per unit of weight (Cache::Memcached::Fast's `ketama_points => 160`). */
export const CHASH_POINTS_PER_WEIGHT = 160

/**
 * nginx's plain `hash $key` (ngx_http_upstream_get_hash_peer), compatible with Cache::Memcached:
 * round r hashes `crc32(r > 0 ? String(r) + key : key)`, keeps bits 16..30
 * (`(crc >>> 16) & 0x7fff`) and adds them to a running sum (see RehashBalancer for the walk).
 * Empty key: round robin. Adding or removing a server remaps most keys.
 */
export class HashBalancer extends RehashBalancer<string> {
  protected readonly seed = 0

  protected keyOf (input: SelectInput): string | undefined {
    return input.key === undefined || input.key === '' ? undefined : input.key
  }

  protected fold (sum: number, key: string, round: number): number {
    const crc = round > 0 ? crc32(key, crc32(String(round))) : crc32(key)
    return sum + ((crc >>> 16) & 0x7fff)
  }
}

interface Point { hash: number, server: string }

/**
 * nginx's `hash $key consistent` (ketama, compatible with Cache::Memcached::Fast): each peer puts
 * `160 * weight` points on a ring of uint32: for a server `host:port` (its configured name, see
 * `Peer.server`), point j is `crc32(host + "\0" + port + prev)`, `prev` being point j-1 as 4
 * little-endian bytes (0 for the first); `unix:/path` hashes as host `/path` and no port. Equal
 * points keep the first. A key goes to the first point >= crc32(key) (wrapping); among the
 * peers of that point's server (several when a name resolves to several addresses) smooth
 * weighted round robin picks an available, untried one; if none, the next point, up to 20;
 * then round robin. Empty key or a single peer: round robin.
 *
 * Adding or removing one of N servers moves about 1/N of the keys.
 */
export class ConsistentHashBalancer implements Balancer {
  private readonly rr: RoundRobinBalancer
  /** Sorted, deduplicated ring. */
  readonly points: readonly Point[]

  constructor (readonly peers: readonly Peer[]) {
    this.rr = new RoundRobinBalancer(peers)
    this.points = buildRing(peers)
  }

  select (input: SelectInput, now: number): Peer | null {
    const key = input.key ?? ''
    if (key === '' || this.peers.length < 2) return this.rr.select(input, now)
    const points = this.points
    let index = findPoint(points, crc32(key))
    for (let tries = 0; tries <= HASH_MAX_TRIES; tries++) {
      const server = points[index % points.length].server
      const best = smoothWeighted(this.peers, (peer) => peer.server === server && usable(peer, input, now))
      if (best !== null) return best
      index++
    }
    return this.rr.select(input, now)
  }
}

/** nginx's split of a server name into the host and port it hashes. */
export function chashHostPort (server: string): { host: string, port: string } {
  if (server.length >= 5 && server.slice(0, 5).toLowerCase() === 'unix:') return { host: server.slice(5), port: '' }
  for (let j = server.length - 1; j >= 0; j--) {
    const c = server.charCodeAt(j)
    if (c === 0x3a /* : */) return { host: server.slice(0, j), port: server.slice(j + 1) }
    if (c < 0x30 || c > 0x39) break
  }
  return { host: server, port: '' }
}

function buildRing (peers: readonly Peer[]): Point[] {
  const points: Point[] = []
  const prev = Buffer.alloc(4)
  for (const peer of peers) {
    const { host, port } = chashHostPort(peer.server)
    const base = crc32(port, crc32('\0', crc32(host)))
    prev.writeUInt32LE(0, 0)
    const n = peer.weight * CHASH_POINTS_PER_WEIGHT
    for (let j = 0; j < n; j++) {
      const hash = crc32(prev, base)
      points.push({ hash, server: peer.server })
      prev.writeUInt32LE(hash, 0)
    }
  }
  points.sort((a, b) => a.hash - b.hash) // stable: on equal hashes the earlier peer's point is kept
  const ring: Point[] = []
  for (const p of points) if (ring.length === 0 || ring[ring.length - 1].hash !== p.hash) ring.push(p)
  return ring
}

/** Index of the first point >= hash (may be points.length, which wraps to 0). */
function findPoint (points: readonly Point[], hash: number): number {
  let i = 0
  let j = points.length
  while (i < j) {
    const k = (i + j) >>> 1
    if (hash > points[k].hash) i = k + 1
    else if (hash < points[k].hash) j = k
    else return k
  }
  return i
}
