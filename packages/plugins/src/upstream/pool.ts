import { lookup } from 'node:dns/promises'
import { Pool } from 'undici'
import type { UpstreamConfig, UpstreamServerConfig } from '@proxyctl/core'
import { parseUpstreamAddress, type UpstreamAddress } from './address.js'
import { Peer } from './peer.js'
import { PeerGroup, type GroupPolicy, type Selection } from './peer-group.js'
import type { SelectInput } from './balancer/balancer.js'

/** How connections to an upstream's servers are made. */
export interface ConnectionSettings {
  scheme: 'http' | 'https'
  /** Milliseconds to establish a connection (nginx's proxy_connect_timeout). Default 60000. */
  connectTimeout: number
  /** Milliseconds an idle upstream connection is kept (nginx's keepalive_timeout, upstream). Default 60000. */
  keepaliveTimeout: number
  /** Verify the upstream's TLS certificate. Default false, as nginx's proxy_ssl_verify. */
  tlsVerify: boolean
  /** SNI name for TLS upstreams (nginx's proxy_ssl_name); default the upstream host. */
  tlsServerName?: string
}

export const DEFAULT_CONNECTION_SETTINGS: ConnectionSettings = {
  scheme: 'http', connectTimeout: 60_000, keepaliveTimeout: 60_000, tlsVerify: false
}

/** One connection pool per peer; what the proxy dispatches requests through. */
export type UpstreamPeer = Peer<Pool> & { readonly target: UpstreamAddress }

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
  private starting: Promise<void> | undefined
  private closed = false

  constructor (name: string, config: UpstreamConfig, settings: Partial<ConnectionSettings> = {}) {
    this.name = name
    this.config = config
    this.settings = { ...DEFAULT_CONNECTION_SETTINGS, ...settings }
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
    const peers: UpstreamPeer[] = []
    for (const entry of this.config.servers) {
      const server: UpstreamServerConfig = typeof entry === 'string' ? { address: entry } : entry
      const address = parseUpstreamAddress(server.address, this.defaultPort)
      const targets: UpstreamAddress[] = address.kind === 'hostname'
        ? (await lookup(address.host, { all: true })).map(({ address: ip, family }) => ({
            kind: 'ip' as const, host: ip, port: address.port, label: family === 6 ? `[${ip}]:${address.port}` : `${ip}:${address.port}`
          }))
        : [address]
      for (const target of targets) {
        const peer = new Peer<Pool>({ ...server, address: target.label, server: server.address }) as UpstreamPeer
        Object.defineProperty(peer, 'target', { value: target, enumerable: true })
        peer.pool = this.createPool(target, server.maxConns ?? 0)
        peers.push(peer)
      }
    }
    this.group = new PeerGroup<Pool>(peers, { name: this.name, policy: this.policy() })
  }

  private policy (): GroupPolicy {
    const b = this.config.balance ?? 'round-robin'
    if (typeof b !== 'function') return b
    return (input, available) => b(input.request as never, available.map((p) => ({ address: p.address, weight: p.weight, activeConnections: p.activeConnections })))
  }

  private createPool (target: UpstreamAddress, maxConns: number): Pool {
    const s = this.settings
    const host = target.kind === 'unix' ? 'localhost' : target.label
    return new Pool(`${s.scheme}://${host}`, {
      ...(target.kind === 'unix' ? { socketPath: target.path } : {}),
      connections: maxConns > 0 ? maxConns : null,
      pipelining: 1,
      keepAliveTimeout: s.keepaliveTimeout,
      keepAliveMaxTimeout: s.keepaliveTimeout,
      connect: {
        timeout: s.connectTimeout,
        ...(s.scheme === 'https'
          ? { rejectUnauthorized: s.tlsVerify, servername: s.tlsServerName ?? (target.kind === 'unix' ? 'localhost' : target.host) }
          : {})
      }
    })
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
    await this.starting?.catch(() => {})
    await Promise.all(this.peers.map((p) => p.pool?.destroy().catch(() => {})))
  }
}
