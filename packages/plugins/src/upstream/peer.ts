/**
 * One upstream server address and its live state, with nginx's passive health
 * (ngx_http_upstream_round_robin.c: the checks in ngx_http_upstream_get_peer and
 * the accounting in ngx_http_upstream_free_round_robin_peer).
 *
 * Time is whatever clock the caller passes as `now` (milliseconds); nothing here
 * reads the clock or sets timers.
 */
import type { UpstreamServerConfig } from '@proxyctl/core'

/**
 * What a peer is built from: a config server entry (`address`, `weight`, `maxFails`,
 * `failTimeout`, `backup`, `down`, `maxConns`, documented there) and the name it was configured as.
 */
export interface PeerOptions extends UpstreamServerConfig {
  /**
   * The server as configured (nginx's `peer->server`), which consistent hashing hashes.
   * Several peers may share one (a hostname resolving to several addresses). Default: `address`.
   */
  server?: string
}

export const DEFAULT_MAX_FAILS = 1
export const DEFAULT_FAIL_TIMEOUT = 10_000

/**
 * A peer. `T` is whatever the networking layer attaches (an undici Pool) in `pool`.
 *
 * Life of a request, as the caller drives it:
 * ```
 * const peer = group.select({ tried }, now)   // also adds peer to tried, calls markSelected
 * peer.acquire()                              // activeConnections++
 * ... request ...
 * ok ? peer.recordSuccess(now) : peer.recordFailure(now)
 * peer.release()                              // activeConnections--
 * ```
 */
export class Peer<T = unknown> {
  readonly address: string
  readonly server: string
  readonly weight: number
  readonly maxFails: number
  readonly failTimeout: number
  readonly backup: boolean
  readonly maxConns: number
  /** Configured down (nginx's `down`): never selectable while true. Writable so an admin API can flip it. */
  down: boolean
  /**
   * Marked down by active health checks (`health/active.ts`): not selectable while true. Kept
   * apart from `down`, which is the configuration's; passive accounting (`fails`) is untouched.
   */
  checkDown = false

  /** Set by the networking layer (e.g. an undici Pool). Never touched here. */
  pool: T | undefined = undefined

  /** Requests in flight on this peer (nginx's `conns`); the caller counts with acquire/release. */
  activeConnections = 0
  /** Failures counted since the last reset (nginx's `fails`). */
  fails = 0
  /** When the last failure happened (nginx's `accessed`). */
  failedAt = 0
  /**
   * nginx's `checked`: the time of the last failure, or of the last selection that came more
   * than `failTimeout` after it. The peer is unavailable while `fails >= maxFails` and
   * `now - checkedAt <= failTimeout`. See `markSelected`.
   */
  checkedAt = 0
  /** Smooth weighted round robin's running weight (nginx's `current_weight`). */
  currentWeight = 0
  /**
   * The weight round robin uses now (nginx's `effective_weight`): each failure lowers it by
   * `weight / maxFails` (integer division, floor 0), each selection pass that sees the peer
   * available raises it by 1 back up to `weight`, so a recovering peer ramps up.
   */
  effectiveWeight: number
  /**
   * The peer is the only one of its group (one primary, no backups). nginx then ignores
   * `maxFails` entirely: failures are not counted and the peer is never unavailable for them.
   * Set by `PeerGroup`.
   */
  single = false

  constructor (options: PeerOptions) {
    this.address = options.address
    this.server = options.server ?? options.address
    this.weight = options.weight ?? 1
    this.maxFails = options.maxFails ?? DEFAULT_MAX_FAILS
    this.failTimeout = options.failTimeout ?? DEFAULT_FAIL_TIMEOUT
    this.backup = options.backup ?? false
    this.down = options.down ?? false
    this.maxConns = options.maxConns ?? 0
    if (typeof this.address !== 'string' || this.address === '') throw new TypeError('peer address must be a non-empty string')
    checkInt('weight', this.weight, 1)
    checkInt('maxFails', this.maxFails, 0)
    checkInt('maxConns', this.maxConns, 0)
    if (!Number.isFinite(this.failTimeout) || this.failTimeout < 0) throw new RangeError(`peer ${this.address}: failTimeout must be a number >= 0, got ${this.failTimeout}`)
    this.effectiveWeight = this.weight

    function checkInt (name: string, value: number, min: number): void {
      if (!Number.isInteger(value) || value < min) throw new RangeError(`peer ${options.address}: ${name} must be an integer >= ${min}, got ${value}`)
    }
  }

  /** Build from a config entry: a bare address string or an `UpstreamServerConfig`-shaped object. */
  static from<T = unknown> (entry: string | PeerOptions): Peer<T> {
    return new Peer<T>(typeof entry === 'string' ? { address: entry } : entry)
  }

  /** Selectable now, ignoring whether this request already tried it. */
  isAvailable (now: number): boolean {
    return !this.down && !this.checkDown && !this.atMaxConns() && !this.isFailed(now)
  }

  /** `maxConns` requests are in flight. */
  atMaxConns (): boolean {
    return this.maxConns > 0 && this.activeConnections >= this.maxConns
  }

  /**
   * Unavailable because of failures: `maxFails` reached and `failTimeout` not yet elapsed since
   * `checkedAt`. As nginx, the bound is inclusive (`now - checked <= fail_timeout`), so with
   * `failTimeout: 0` a failed peer is unavailable only at the very instant of the failure
   * (in nginx, whose clock ticks in seconds, for the rest of that second).
   */
  isFailed (now: number): boolean {
    return !this.single &&
      this.maxFails > 0 &&
      this.fails >= this.maxFails &&
      now - this.checkedAt <= this.failTimeout
  }

  /** When a failed peer becomes selectable again (the first instant after the window), else undefined. */
  availableAfter (now: number): number | undefined {
    return this.isFailed(now) ? this.checkedAt + this.failTimeout : undefined
  }

  /**
   * The peer was chosen for a request (called by `PeerGroup.select`). As nginx, if `failTimeout`
   * has passed since `checkedAt`, start a new check period: `checkedAt = now`. A success on a
   * request selected after that resets `fails`; and if the peer had reached `maxFails`, it is
   * unavailable again until that request's outcome is known or another `failTimeout` passes —
   * so a recovering peer gets one trial request per `failTimeout`.
   */
  markSelected (now: number): void {
    if (now - this.checkedAt > this.failTimeout) this.checkedAt = now
  }

  /**
   * The request failed in a way that counts (connect error, timeout, invalid header; nginx's
   * NGX_PEER_FAILED). Returns true when the peer is now disabled (nginx logs
   * "upstream server temporarily disabled" at warn).
   */
  recordFailure (now: number): boolean {
    if (this.single) {
      this.fails = 0
      return false
    }
    this.fails++
    this.failedAt = now
    this.checkedAt = now
    if (this.maxFails > 0) {
      this.effectiveWeight -= Math.trunc(this.weight / this.maxFails)
      if (this.effectiveWeight < 0) this.effectiveWeight = 0
      return this.fails >= this.maxFails
    }
    return false
  }

  /**
   * The request succeeded (or ended in a way that is not a failure). As nginx, `fails` resets
   * only if the request was selected in a check period that began after the last failure
   * (`failedAt < checkedAt`): successes within `failTimeout` of a failure do not forgive it.
   * `now` is unused (nginx ignores the time here too) and kept for symmetry.
   */
  recordSuccess (_now?: number): void {
    if (this.single || this.failedAt < this.checkedAt) this.fails = 0
  }

  /** A request starts using this peer. */
  acquire (): void {
    this.activeConnections++
  }

  /** A request stops using this peer. */
  release (): void {
    if (this.activeConnections > 0) this.activeConnections--
  }
}
