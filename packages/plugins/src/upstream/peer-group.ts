import { ProxyctlError, type ProxyctlErrorCode } from '@proxyctl/core'
import { Peer, type PeerOptions } from './peer.js'
import { usable, type Balancer, type SelectInput } from './balancer/balancer.js'
import { RoundRobinBalancer } from './balancer/round-robin.js'
import { LeastConnBalancer } from './balancer/least-conn.js'
import { IpHashBalancer } from './balancer/ip-hash.js'
import { ConsistentHashBalancer, HashBalancer } from './balancer/consistent-hash.js'
import { RandomTwoBalancer } from './balancer/random-two.js'

export type { SelectInput } from './balancer/balancer.js'

/**
 * A policy that picks among the peers usable now (available and untried; the primaries, or the
 * backups when no primary is usable), returning an index into `available`.
 */
export type CustomSelect = (input: SelectInput, available: readonly Peer[]) => number

/** `BalancePolicy` of @proxyctl/core, with the custom function taking the select input. */
export type GroupPolicy =
  | 'round-robin'
  | 'least-conn'
  | 'ip-hash'
  | 'random-two'
  | { hash: string, consistent?: boolean }
  | CustomSelect

export interface PeerGroupOptions {
  /** The upstream's name, for messages. */
  name?: string
  /** Default `'round-robin'`. For `{ hash }` the caller renders the key and passes `input.key`. */
  policy?: GroupPolicy
  /** Uniform in [0, 1) for `random-two`. Default Math.random. */
  random?: () => number
}

/** Why `select` found no peer. */
export interface NoPeer {
  /**
   * `PROXYCTL_UPSTREAM_UNAVAILABLE`: nginx's NGX_BUSY, answered 502 and logged
   * "no live upstreams while connecting to upstream".
   * `PROXYCTL_BALANCER_ERROR`: a custom policy threw or returned an index out of range.
   */
  code: Extract<ProxyctlErrorCode, 'PROXYCTL_UPSTREAM_UNAVAILABLE' | 'PROXYCTL_BALANCER_ERROR'>
  /** A line for the error log. */
  message: string
  /** How many peers (primary and backup) were down (configured or by health check), failed, at maxConns, already tried. */
  counts: { total: number, down: number, failed: number, maxConns: number, tried: number }
  /** For `PROXYCTL_BALANCER_ERROR`: what the custom policy threw, if it threw. */
  error?: unknown
}

export type Selection =
  | { peer: Peer, backup: boolean, reason?: undefined }
  | { peer: null, backup?: undefined, reason: NoPeer }

/**
 * The selection front of an upstream pool: primary and backup peers and their balancers.
 *
 * A request (and each of its next-upstream retries) calls `select` with one `tried` Set it
 * keeps; `select` returns a peer available now and not yet tried, adds it to `tried` and marks
 * it selected (`Peer.markSelected`); or null, then `lastReason` says why. Backups are used only
 * when no primary is usable for the request (all down, failed, busy or tried). A group of one
 * primary and no backups is `single`: nginx ignores its failures.
 *
 * When nothing is usable, nginx (>= 1.11.5) answers 502 "no live upstreams" and changes no
 * state: failed peers come back when their `failTimeout` elapses, one trial request each,
 * busy ones when a request ends.
 */
export class PeerGroup<T = unknown> {
  readonly name: string
  readonly peers: readonly Peer<T>[]
  readonly primary: readonly Peer<T>[]
  readonly backup: readonly Peer<T>[]
  /**
   * nginx's default attempt budget per request (`proxy_next_upstream_tries 0`): the number of
   * peers not marked down, primary and backup.
   */
  readonly tries: number
  /** Why the last `select` returned null (null after a successful one). */
  lastReason: NoPeer | null = null

  private readonly primaryBalancer: Balancer
  private readonly backupBalancer: Balancer
  private readonly custom: CustomSelect | undefined

  constructor (peers: ReadonlyArray<Peer<T>>, options: PeerGroupOptions = {}) {
    this.name = options.name ?? 'upstream'
    if (peers.length === 0) throw new RangeError(`no servers in upstream "${this.name}"`)
    this.peers = [...peers]
    this.primary = this.peers.filter((p) => !p.backup)
    this.backup = this.peers.filter((p) => p.backup)
    if (this.primary.length === 0) throw new RangeError(`no primary servers in upstream "${this.name}"`)
    const single = this.primary.length === 1 && this.backup.length === 0
    for (const p of this.peers) p.single = single
    this.tries = this.peers.filter((p) => !p.down).length

    const policy = options.policy ?? 'round-robin'
    this.custom = typeof policy === 'function' ? policy : undefined
    this.primaryBalancer = makeBalancer(policy, this.primary, options)
    // As nginx: least_conn balances backups with least_conn; every other method reaches the
    // backups through round robin's fallback.
    this.backupBalancer = policy === 'least-conn' ? new LeastConnBalancer(this.backup) : new RoundRobinBalancer(this.backup)
  }

  /** Build from config entries (strings or `UpstreamServerConfig`-shaped objects). */
  static fromConfig<T = unknown> (
    servers: ReadonlyArray<string | PeerOptions>,
    options: PeerGroupOptions = {}
  ): PeerGroup<T> {
    return new PeerGroup<T>(servers.map((s) => Peer.from<T>(s)), options)
  }

  /** A peer for this request, or null (see `lastReason`). */
  select (input: SelectInput & { tried: Set<Peer> }, now: number): Peer<T> | null {
    return this.pick(input, now).peer as Peer<T> | null
  }

  /** As `select`, returning the reason with the result. */
  pick (input: SelectInput & { tried: Set<Peer> }, now: number): Selection {
    let peer: Peer | null
    let backup = false
    try {
      peer = this.choose(this.primary, this.primaryBalancer, input, now)
      if (peer === null && this.backup.length > 0) {
        peer = this.choose(this.backup, this.backupBalancer, input, now)
        backup = true
      }
    } catch (error) {
      if (!(error instanceof CustomPolicyError)) throw error
      return this.fail('PROXYCTL_BALANCER_ERROR', `${error.message} in upstream "${this.name}"`, input, now, error.cause)
    }
    if (peer === null) return this.fail('PROXYCTL_UPSTREAM_UNAVAILABLE', `no live upstreams in upstream "${this.name}"`, input, now)

    peer.markSelected(now)
    input.tried.add(peer)
    this.lastReason = null
    return { peer, backup }
  }

  private choose (peers: readonly Peer[], balancer: Balancer, input: SelectInput, now: number): Peer | null {
    if (this.custom === undefined) return balancer.select(input, now)
    const available = peers.filter((p) => usable(p, input, now))
    if (available.length === 0) return null
    let index: number
    try {
      index = this.custom(input, available)
    } catch (cause) {
      throw new CustomPolicyError('custom balancer threw', cause)
    }
    if (!Number.isInteger(index) || index < 0 || index >= available.length) {
      throw new CustomPolicyError(`custom balancer returned ${String(index)} for ${available.length} servers`)
    }
    return available[index]
  }

  private fail (code: NoPeer['code'], message: string, input: SelectInput, now: number, error?: unknown): Selection {
    const counts = { total: this.peers.length, down: 0, failed: 0, maxConns: 0, tried: 0 }
    for (const p of this.peers) {
      if (p.down || p.checkDown) counts.down++
      else if (p.isFailed(now)) counts.failed++
      else if (p.atMaxConns()) counts.maxConns++
      else if (input.tried.has(p)) counts.tried++
    }
    const reason: NoPeer = { code, message, counts }
    if (error !== undefined) reason.error = error
    this.lastReason = reason
    return { peer: null, reason }
  }
}

class CustomPolicyError extends ProxyctlError {
  constructor (message: string, cause?: unknown) {
    super('PROXYCTL_BALANCER_ERROR', message, cause === undefined ? undefined : { cause })
  }
}

function makeBalancer (policy: GroupPolicy, peers: readonly Peer[], options: PeerGroupOptions): Balancer {
  if (typeof policy === 'function') return new RoundRobinBalancer(peers) // unused: custom picks itself
  if (typeof policy === 'object') {
    return policy.consistent === true ? new ConsistentHashBalancer(peers) : new HashBalancer(peers)
  }
  switch (policy) {
    case 'round-robin': return new RoundRobinBalancer(peers)
    case 'least-conn': return new LeastConnBalancer(peers)
    case 'ip-hash': return new IpHashBalancer(peers)
    case 'random-two': return new RandomTwoBalancer(peers, { random: options.random })
    default: throw new RangeError(`unknown balance policy ${JSON.stringify(policy)}`)
  }
}
