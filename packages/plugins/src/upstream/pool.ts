import { lookup } from 'node:dns/promises'
import { buildConnector, Pool } from './undici-pool.js'
import type { UpstreamConfig, UpstreamServerConfig } from '@proxyctl/core'
import { parseUpstreamAddress, upstreamFamilies, upstreamMeter, upstreamTlsOptions, UPSTREAM_STATES, type MetricsRegistry, type ResolvedUpstreamTls, type UpstreamAddress, type UpstreamMeter } from '@proxyctl/core/internal'
import { Peer } from './peer.js'
import { PeerGroup, type GroupPolicy, type Selection } from './peer-group.js'
import type { SelectInput } from './balancer/balancer.js'
import { ActiveHealthChecker } from './health/active.js'
import { H1Client } from './h1/client.js'

/** How connections to an upstream's servers are made. */
export interface ConnectionSettings {
  scheme: 'http' | 'https'
  /** Milliseconds to establish a connection (nginx's proxy_connect_timeout). Default 60000. */
  connectTimeout: number
  /** Milliseconds an idle upstream connection is kept (nginx's keepalive_timeout, upstream). Default 60000. */
  keepaliveTimeout: number
  /**
   * TLS to `https` servers: verification (on by default: nginx's proxy_ssl_verify is off), CA,
   * SNI name (default the server's host name), client certificate.
   */
  tls: ResolvedUpstreamTls
}

export const DEFAULT_CONNECTION_SETTINGS: ConnectionSettings = {
  scheme: 'http',
  connectTimeout: 60_000,
  keepaliveTimeout: 60_000,
  tls: { verify: true, ca: undefined, serverName: undefined, cert: undefined, key: undefined }
}

/**
 * A peer and its connections: an undici Pool (`pool`) for requests with a body, TLS and upgrades,
 * and, for plain HTTP, proxyctl's own HTTP/1.1 client (`h1`) for requests without a body, the
 * proxy's hot path (see upstream/h1/).
 */
export type UpstreamPeer = Peer<Pool> & { readonly target: UpstreamAddress, h1?: H1Client, meter?: UpstreamMeter }

/** Resolves a hostname to all its addresses (as `dns.promises.lookup(host, { all: true })`). */
export type LookupAll = (hostname: string) => Promise<Array<{ address: string, family: number }>>

export interface UpstreamPoolOptions {
  /** How hostnames are resolved (tests inject one). Default `dns.promises.lookup` with `all`. */
  lookup?: LookupAll
  /** The process's metrics: each peer gets its series, and the pool reports states and connections at each scrape. */
  metrics?: MetricsRegistry
}

/** Default `resolveInterval`: hostnames are resolved again every 30 s. */
export const DEFAULT_RESOLVE_INTERVAL = 30_000

export interface PoolLogger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

/**
 * A named upstream: its peers (hostnames resolved to one peer per address, as nginx), their
 * balancer and health, and one undici Pool per peer so connections are kept alive and reused.
 */
export class UpstreamPool {
  readonly name: string
  readonly config: UpstreamConfig
  readonly settings: ConnectionSettings
  group!: PeerGroup<Pool>
  log: PoolLogger | undefined
  /** Active health checks, when the upstream has `healthCheck`. */
  health: ActiveHealthChecker | undefined
  private starting: Promise<void> | undefined
  private closed = false
  private readonly lookup: LookupAll
  /** Peers by `entryIndex|address`, so re-resolution keeps the Peer of an unchanged address. */
  private byKey = new Map<string, UpstreamPeer>()
  private resolveTimer: NodeJS.Timeout | undefined
  private readonly metrics: MetricsRegistry | undefined
  /** Stops this pool's collector: a registry kept across reloads outlives a pool. */
  private stopCollecting: (() => void) | undefined

  constructor (name: string, config: UpstreamConfig, settings: Partial<ConnectionSettings> = {}, options: UpstreamPoolOptions = {}) {
    this.name = name
    this.config = config
    this.settings = { ...DEFAULT_CONNECTION_SETTINGS, ...settings }
    this.lookup = options.lookup ?? ((host) => lookup(host, { all: true }))
    this.metrics = options.metrics
    // Validate addresses now, so a bad one is a config error, not a runtime one.
    for (const s of config.servers) parseUpstreamAddress(typeof s === 'string' ? s : s.address, this.defaultPort)
  }

  get defaultPort (): number { return this.settings.scheme === 'https' ? 443 : 80 }

  /** Resolves hostnames and creates the peers. Idempotent. */
  start (): Promise<void> {
    this.starting ??= this.build()
    return this.starting
  }

  private async build (): Promise<void> {
    // Counted from the start, not from construction: a config that is only checked (or a reload
    // that fails) never starts its pools and leaves nothing in a registry that outlives it.
    if (this.metrics !== undefined) this.stopCollecting = this.collectInto(this.metrics)
    const { peers, byKey } = await this.resolvePeers(false)
    this.byKey = byKey
    this.group = new PeerGroup<Pool>(peers, { name: this.name, policy: this.policy() })
    if (this.closed) return
    if (this.config.healthCheck !== undefined) {
      this.health = new ActiveHealthChecker(this, this.config.healthCheck)
      this.health.start()
    }
    this.scheduleResolve()
  }

  /**
   * One peer per address of each server (hostnames resolved), reusing the Peer of an address
   * already known. On re-resolution (`keepOnError`), a hostname that fails to resolve keeps its
   * current peers.
   */
  private async resolvePeers (keepOnError: boolean): Promise<{ peers: UpstreamPeer[], byKey: Map<string, UpstreamPeer> }> {
    const peers: UpstreamPeer[] = []
    const byKey = new Map<string, UpstreamPeer>()
    for (const [index, entry] of this.config.servers.entries()) {
      const server: UpstreamServerConfig = typeof entry === 'string' ? { address: entry } : entry
      const address = parseUpstreamAddress(server.address, this.defaultPort)
      let targets: UpstreamAddress[] = [address]
      if (address.kind === 'hostname') {
        try {
          const found = await this.lookup(address.host)
          if (found.length === 0) throw new Error(`no addresses for ${address.host}`)
          targets = found.map(({ address: ip, family }) => ({
            kind: 'ip' as const, host: ip, port: address.port, label: family === 6 ? `[${ip}]:${address.port}` : `${ip}:${address.port}`
          }))
        } catch (err) {
          if (!keepOnError) throw err
          this.log?.warn({ upstream: this.name, server: server.address, reason: (err as Error).message },
            `could not resolve ${address.host}: ${(err as Error).message}, keeping its addresses, upstream: "${this.name}"`)
          for (const [key, peer] of this.byKey) if (key.startsWith(`${index}|`)) { byKey.set(key, peer); peers.push(peer) }
          continue
        }
      }
      for (const target of targets) {
        const key = `${index}|${target.label}`
        if (byKey.has(key)) continue
        let peer = this.byKey.get(key)
        if (peer === undefined) {
          peer = new Peer<Pool>({ ...server, address: target.label, server: server.address }) as UpstreamPeer
          Object.defineProperty(peer, 'target', { value: target, enumerable: true })
          peer.pool = this.createPool(target, server.maxConns ?? 0)
          if (this.metrics !== undefined) peer.meter = upstreamMeter(this.metrics, this.name, target.label)
          if (this.settings.scheme === 'http') peer.h1 = this.createH1Client(target)
        }
        byKey.set(key, peer)
        peers.push(peer)
      }
    }
    return { peers, byKey }
  }

  private scheduleResolve (): void {
    const interval = this.config.resolveInterval ?? DEFAULT_RESOLVE_INTERVAL
    if (this.closed || interval <= 0) return
    const hasHostname = this.config.servers.some((e) => parseUpstreamAddress(typeof e === 'string' ? e : e.address, this.defaultPort).kind === 'hostname')
    if (!hasHostname) return
    this.resolveTimer = setTimeout(() => {
      this.refresh().catch((err: unknown) => {
        this.log?.error({ upstream: this.name, reason: (err as Error).message }, `re-resolving upstream "${this.name}" failed: ${(err as Error).message}`)
      }).finally(() => this.scheduleResolve())
    }, interval)
    this.resolveTimer.unref()
  }

  /**
   * Resolves hostname servers again. When the set of addresses changed, peers of new addresses
   * are added, vanished ones removed (their connections close once idle), unchanged ones kept
   * with their state, and the PeerGroup is rebuilt. Returns whether anything changed.
   */
  async refresh (): Promise<boolean> {
    if (this.closed || this.group === undefined) return false
    const { peers, byKey } = await this.resolvePeers(true)
    const before = new Set(this.byKey.values())
    const after = new Set(peers)
    const added = peers.filter((p) => !before.has(p))
    if (this.closed) {
      await Promise.all(added.map(destroyPeer))
      return false
    }
    const removed = [...before].filter((p) => !after.has(p))
    if (added.length === 0 && removed.length === 0) return false
    this.byKey = byKey
    this.group = new PeerGroup<Pool>(peers, { name: this.name, policy: this.policy() })
    this.log?.info({ upstream: this.name, added: added.map((p) => p.address), removed: removed.map((p) => p.address) },
      `upstream "${this.name}" re-resolved: ${added.length} server(s) added, ${removed.length} removed`)
    // In-flight requests on removed peers finish; then their connections close.
    for (const p of removed) { void p.pool?.close().catch(() => {}); void p.h1?.close() }
    return true
  }

  /** At each scrape: every server's state (a state set), backups in use, connections active and idle. */
  private collectInto (registry: MetricsRegistry): () => void {
    const f = upstreamFamilies(registry)
    const backupInUse = f.backupInUse.child(this.name)
    return registry.onCollect(() => {
      const group = this.group as PeerGroup<Pool> | undefined
      if (group === undefined) return
      const now = Date.now()
      for (const p of group.peers as readonly UpstreamPeer[]) {
        const state = p.down ? 'down' : p.checkDown ? 'unhealthy' : p.isFailed(now) ? 'failed' : 'up'
        const backup = p.backup ? 'true' : 'false'
        for (const s of UPSTREAM_STATES) f.state.child(this.name, p.address, backup, s).set(s === state ? 1 : 0)
        const open = p.h1 !== undefined ? p.h1.size : (p.pool?.stats.connected ?? 0)
        const active = Math.min(open, p.activeConnections)
        f.connections.child(this.name, p.address, 'active').set(active)
        f.connections.child(this.name, p.address, 'idle').set(open - active)
      }
      const usable = (p: Peer): boolean => !p.down && !p.checkDown && !p.isFailed(now)
      backupInUse.set(group.backup.length > 0 && !group.primary.some(usable) && group.backup.some(usable) ? 1 : 0)
    })
  }

  private policy (): GroupPolicy {
    const b = this.config.balance ?? 'round-robin'
    if (typeof b !== 'function') return b
    return (input, available) => b(input.request as never, available.map((p) => ({ address: p.address, weight: p.weight, activeConnections: p.activeConnections })))
  }

  private createPool (target: UpstreamAddress, maxConns: number): Pool {
    const s = this.settings
    const host = target.kind === 'unix' ? 'localhost' : target.label
    const socket = target.kind === 'unix' ? { socketPath: target.path } : {}
    return new Pool(`${s.scheme}://${host}`, {
      ...socket,
      connections: maxConns > 0 ? maxConns : null,
      pipelining: 1,
      keepAliveTimeout: s.keepaliveTimeout,
      keepAliveMaxTimeout: s.keepaliveTimeout,
      connect: s.scheme === 'https' ? this.tlsConnector(target, socket) : { timeout: s.connectTimeout }
    })
  }

  /**
   * undici takes the SNI name (and the name it verifies) from each request's Host header; the
   * upstream's is fixed instead (`tls.serverName`, else the server's host name; none for an IP), as
   * nginx's proxy_ssl_name does not follow a proxy_set_header Host.
   */
  private tlsConnector (target: UpstreamAddress, socket: { socketPath?: string }): ReturnType<typeof buildConnector> {
    const s = this.settings
    const options = upstreamTlsOptions(s.tls, target.kind === 'unix' ? 'localhost' : target.host)
    const connector = buildConnector({ ...socket, timeout: s.connectTimeout, ...options } as Parameters<typeof buildConnector>[0])
    const servername = options.servername ?? undefined
    return (opts, callback) => connector({ ...opts, servername }, callback)
  }

  private createH1Client (target: UpstreamAddress): H1Client {
    const s = this.settings
    return new H1Client(target.kind === 'unix' ? { path: target.path } : { host: target.host, port: target.port }, {
      connectTimeout: s.connectTimeout,
      keepaliveTimeout: s.keepaliveTimeout,
      defaultHost: target.kind === 'unix' ? 'localhost' : target.label
    })
  }

  /**
   * For `proxyctl explain`: the server the balancer would pick first for `input` in a process
   * just started (the same balancer, on peers without connections), or why none can be named: a
   * hostname is resolved only when the pool starts. Changes no state of the pool.
   */
  preview (input: SelectInput): { pick: string | null, why?: string } {
    const entries = this.config.servers.map((s) => typeof s === 'string' ? { address: s } : s)
    const peers: Peer[] = []
    for (const server of entries) {
      const target = parseUpstreamAddress(server.address, this.defaultPort)
      if (target.kind === 'hostname') return { pick: null, why: `"${server.address}" is resolved when proxyctl starts` }
      peers.push(new Peer({ ...server, address: target.label, server: server.address }))
    }
    let selection: Selection
    try {
      selection = new PeerGroup(peers, { name: this.name, policy: this.policy() }).pick({ ...input, tried: new Set() }, Date.now())
    } catch (err) { return { pick: null, why: (err as Error).message } }
    return selection.peer === null ? { pick: null, why: selection.reason.message } : { pick: selection.peer.address }
  }

  /** Picks a peer for one attempt of a request (see PeerGroup.pick). */
  pick (input: SelectInput & { tried: Set<Peer> }, now: number): Selection {
    return this.group.pick(input, now)
  }

  get peers (): readonly UpstreamPeer[] {
    return (this.group?.peers ?? []) as readonly UpstreamPeer[]
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.stopCollecting?.()
    this.health?.stop()
    if (this.resolveTimer !== undefined) clearTimeout(this.resolveTimer)
    await this.starting?.catch(() => {})
    await Promise.all(this.peers.map(destroyPeer))
  }
}

async function destroyPeer (p: UpstreamPeer): Promise<void> {
  await Promise.all([p.pool?.destroy().catch(() => {}), p.h1?.destroy()])
}
