import type { Dispatcher } from 'undici'
import type { HealthCheckConfig } from '@proxyctl/core'
import type { Peer } from '../peer.js'

/** `HealthCheckConfig` with its defaults filled in. */
export interface HealthCheckSettings {
  interval: number
  path: string
  expectStatus: readonly [number, number]
  rise: number
  fall: number
  timeout: number
}

export const HEALTH_CHECK_DEFAULTS: HealthCheckSettings = {
  interval: 5000, path: '/', expectStatus: [200, 399], rise: 2, fall: 3, timeout: 2000
}

export function healthCheckSettings (config: HealthCheckConfig): HealthCheckSettings {
  return {
    interval: config.interval ?? HEALTH_CHECK_DEFAULTS.interval,
    path: config.path ?? HEALTH_CHECK_DEFAULTS.path,
    expectStatus: config.expectStatus ?? HEALTH_CHECK_DEFAULTS.expectStatus,
    rise: config.rise ?? HEALTH_CHECK_DEFAULTS.rise,
    fall: config.fall ?? HEALTH_CHECK_DEFAULTS.fall,
    timeout: config.timeout ?? HEALTH_CHECK_DEFAULTS.timeout
  }
}

/** What the checker needs of an upstream pool (an `UpstreamPool` fits). */
export interface HealthCheckTarget {
  readonly name: string
  /** The peers now; read on every round, so peers added by DNS re-resolution are checked too. */
  readonly peers: ReadonlyArray<Peer<Dispatcher>>
  readonly log: { info (obj: object, msg: string): void, warn (obj: object, msg: string): void } | undefined
}

/** Outcome of one check of one peer. */
export interface CheckResult { ok: boolean, reason: string }

interface PeerHealth {
  /** Consecutive successes (while down) or failures (while up). */
  successes: number
  failures: number
  inFlight: boolean
  lastReason: string
}

/**
 * Active health checks: every `interval` ms each peer (not configured `down`) gets a GET `path`
 * through its own connection pool; a status in `expectStatus` within `timeout` is a success.
 * `fall` consecutive failures set `peer.checkDown` (the peer is not selected), `rise`
 * consecutive successes clear it. Peers start up. Every transition is logged: warn when a peer
 * goes down, info when it comes back, with the upstream, the server and the reason.
 *
 * The timer is unref'd; `stop()` ends it (in-flight checks are then ignored).
 */
export class ActiveHealthChecker {
  readonly settings: HealthCheckSettings
  private readonly state = new WeakMap<Peer, PeerHealth>()
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  constructor (readonly target: HealthCheckTarget, config: HealthCheckConfig) {
    this.settings = healthCheckSettings(config)
  }

  /** Starts checking: a first round at once, then one every `interval`. */
  start (): void {
    if (this.timer !== undefined || this.stopped) return
    this.timer = setInterval(() => { void this.round() }, this.settings.interval)
    this.timer.unref()
    void this.round()
  }

  stop (): void {
    this.stopped = true
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  /** One check of every peer (a peer whose previous check is still running is skipped). */
  async round (): Promise<void> {
    await Promise.all(this.target.peers.map((peer) => this.checkPeer(peer)))
  }

  private async checkPeer (peer: Peer<Dispatcher>): Promise<void> {
    if (this.stopped || peer.down || peer.pool === undefined) return
    let h = this.state.get(peer)
    if (h === undefined) {
      h = { successes: 0, failures: 0, inFlight: false, lastReason: '' }
      this.state.set(peer, h)
    }
    if (h.inFlight) return
    h.inFlight = true
    let result: CheckResult
    try {
      result = await this.probe(peer.pool)
    } finally {
      h.inFlight = false
    }
    if (this.stopped) return
    this.record(peer, h, result)
  }

  private record (peer: Peer, h: PeerHealth, result: CheckResult): void {
    const s = this.settings
    const log = this.target.log
    h.lastReason = result.reason
    if (result.ok) {
      h.failures = 0
      if (!peer.checkDown) return
      if (++h.successes < s.rise) return
      h.successes = 0
      peer.checkDown = false
      log?.info({ upstream: this.target.name, server: peer.address, reason: result.reason, rise: s.rise },
        `upstream server up after ${s.rise} successful health checks (${result.reason}), upstream: "${this.target.name}", server: ${peer.address}`)
    } else {
      h.successes = 0
      if (peer.checkDown) return
      if (++h.failures < s.fall) return
      h.failures = 0
      peer.checkDown = true
      log?.warn({ upstream: this.target.name, server: peer.address, reason: result.reason, fall: s.fall },
        `upstream server down after ${s.fall} failed health checks (${result.reason}), upstream: "${this.target.name}", server: ${peer.address}`)
    }
  }

  /** One GET `path`, bounded by `timeout`; the body is read and dropped so the connection is reused. */
  private async probe (pool: Dispatcher): Promise<CheckResult> {
    const s = this.settings
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(new CheckTimeout()), s.timeout)
    timer.unref()
    try {
      const res = await pool.request({
        method: 'GET',
        path: s.path,
        headers: { 'user-agent': 'proxyctl-health-check' },
        signal: ac.signal,
        headersTimeout: s.timeout,
        bodyTimeout: s.timeout
      })
      await res.body.dump({ limit: 64 * 1024 }).catch(() => {})
      const [lo, hi] = s.expectStatus
      const ok = res.statusCode >= lo && res.statusCode <= hi
      return { ok, reason: `status ${res.statusCode}` }
    } catch (err) {
      if (ac.signal.aborted || isTimeout(err)) return { ok: false, reason: `timed out after ${s.timeout} ms` }
      const e = err as NodeJS.ErrnoException
      return { ok: false, reason: e.code !== undefined ? `${e.code}: ${e.message}` : String(e.message ?? e) }
    } finally {
      clearTimeout(timer)
    }
  }
}

class CheckTimeout extends Error {
  constructor () { super('health check timed out') }
}

function isTimeout (err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code
  return err instanceof CheckTimeout || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT'
}
