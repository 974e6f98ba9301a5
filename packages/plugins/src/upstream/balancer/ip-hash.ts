import { isIPv4, isIPv6 } from 'node:net'
import type { SelectInput } from './balancer.js'
import { RehashBalancer } from './rehash.js'

/**
 * nginx's ip_hash (ngx_http_upstream_ip_hash_module.c). The key is the first three octets of an
 * IPv4 client address (a /24 sticks to one peer) or all 16 bytes of an IPv6 one; clients with
 * no IP (unix sockets) all hash as `0.0.0`. Starting from 89, each round folds the key in
 * (`h = (h * 113 + byte) % 6271`) and picks the peer owning `h % totalWeight` (the walk is
 * RehashBalancer's).
 *
 * IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, what Node reports on a dual-stack socket) are
 * hashed as the IPv4 address, so a client hashes the same whichever way it connected.
 */
export class IpHashBalancer extends RehashBalancer<Uint8Array> {
  protected readonly seed = 89

  protected keyOf (input: SelectInput): Uint8Array {
    return ipHashKey(input.clientAddress)
  }

  protected fold (hash: number, key: Uint8Array): number {
    for (const byte of key) hash = (hash * 113 + byte) % 6271
    return hash
  }
}

const PSEUDO = new Uint8Array(3)

/** The bytes ip_hash hashes for a client address. */
export function ipHashKey (address: string | undefined): Uint8Array {
  if (address === undefined) return PSEUDO
  const v4 = ipv4Bytes(address)
  if (v4 !== undefined) return v4.subarray(0, 3)
  const v6 = ipv6Bytes(address)
  if (v6 === undefined) return PSEUDO
  if (isV4Mapped(v6)) return v6.subarray(12, 15)
  return v6
}

function ipv4Bytes (address: string): Uint8Array | undefined {
  if (!isIPv4(address)) return undefined
  return Uint8Array.from(address.split('.').map(Number))
}

/** The 16 bytes of an IPv6 address (zone id ignored), or undefined. */
export function ipv6Bytes (address: string): Uint8Array | undefined {
  const zone = address.indexOf('%')
  if (zone !== -1) address = address.slice(0, zone)
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1)
  if (!isIPv6(address)) return undefined

  const words: number[] = []
  const parseGroups = (part: string): number[] => {
    if (part === '') return []
    const out: number[] = []
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const b = g.split('.').map(Number)
        out.push((b[0] << 8) | b[1], (b[2] << 8) | b[3])
      } else {
        out.push(parseInt(g, 16))
      }
    }
    return out
  }
  const gap = address.indexOf('::')
  if (gap === -1) {
    words.push(...parseGroups(address))
  } else {
    const head = parseGroups(address.slice(0, gap))
    const tail = parseGroups(address.slice(gap + 2))
    words.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail)
  }
  const bytes = new Uint8Array(16)
  for (let i = 0; i < 8; i++) {
    bytes[2 * i] = words[i] >> 8
    bytes[2 * i + 1] = words[i] & 0xff
  }
  return bytes
}

function isV4Mapped (b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false
  return b[10] === 0xff && b[11] === 0xff
}
