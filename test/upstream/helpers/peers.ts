import { Peer, type PeerOptions } from '../../../packages/plugins/src/upstream/index.js'
import type { Balancer } from '../../../packages/plugins/src/upstream/index.js'

/** Peers named a, b, c... with the given weights (or option objects). */
export function makePeers (...specs: Array<number | Partial<PeerOptions>>): Peer[] {
  return specs.map((spec, i) => {
    const address = String.fromCharCode(97 + i)
    return new Peer(typeof spec === 'number' ? { address, weight: spec } : { address, ...spec })
  })
}

/** Addresses of `n` selections by a balancer, marking nothing tried. */
export function run (balancer: Balancer, n: number, now = 0): string[] {
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(balancer.select({ tried: new Set() }, now)?.address ?? '-')
  return out
}

export function countBy (list: Iterable<string>): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const x of list) counts[x] = (counts[x] ?? 0) + 1
  return counts
}

/** Deterministic uniform [0, 1) (mulberry32). */
export function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
