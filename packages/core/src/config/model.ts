/**
 * The resolved config: what `resolveConfig` builds and the server, the router and handlers read.
 * Declarations only, so behaviour modules can all import it without importing each other.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RequestContext } from '../routing/request-context.js'
import type { LocationTree } from '../routing/location-tree.js'
import type { ServerSelector } from '../routing/server-select.js'
import type { LocationKind, LocationNode } from '../routing/types.js'
import type { CompileScope, Template } from '../variables/types.js'
import type { AccessRule } from './access.js'
import type { RewriteRule } from '../routing/rewrite.js'
import type { PreflightCheck } from './preflight.js'
import type { ResolvedAccessLog } from '../log/access-log.js'
import type { ResolvedConnectionLimits, ResolvedRequestLimits } from './limits.js'
import type { ResolvedContent } from './content.js'
import type { ResolvedCompress } from './compress.js'
import type { ResolvedCacheZone } from './caches.js'
import type { RateLimitZones, ResolvedRateLimits } from './rate-limits.js'
import type { ResolvedServerTls, ResolvedUpstreamTls } from './tls.js'
import type { AddHeaders } from '../http/response-headers.js'
import type { MetricsRegistry } from '../metrics/registry.js'
import type { CompiledHandler, LocationHandler, PluginEntry, ProxyConfig, UpstreamConfig } from './types.js'

/**
 * The config after validation: every default applied, every template compiled, listen addresses
 * grouped, location trees built. What the server and `proxyctl check` work from.
 */
export interface ResolvedConfig {
  /** Absolute path of the config file, when loaded from one. */
  readonly file: string | undefined
  /** Folder relative paths in the config resolve against. */
  readonly baseDir: string
  readonly servers: ResolvedServer[]
  readonly listens: ResolvedListen[]
  readonly upstreams: ReadonlyMap<string, UpstreamConfig>
  /** Each upstream's `tls`, files read (verify on unless it says otherwise). */
  readonly upstreamTls: ReadonlyMap<string, ResolvedUpstreamTls>
  readonly plugins: PluginEntry[]
  readonly logLevel: NonNullable<ProxyConfig['logLevel']>
  readonly shutdownTimeout: number
  readonly workers: number | 'auto'
  /** Absolute folder for bodies buffered to disk. */
  readonly tempPath: string
  /** The top level's client limits (servers inherit them). */
  readonly limits: ResolvedConnectionLimits
  /** The top level's types, charset, conditional and range settings (servers inherit them). */
  readonly content: ResolvedContent
  /** limitReqZones and limitConnZones, and the Redis links they use (opened by startProxy). */
  readonly limitZones: RateLimitZones
  /** caches (proxy_cache_path): the zones by name; the proxy makes their stores. */
  readonly caches: ReadonlyMap<string, ResolvedCacheZone>
  /** The top level's limitReq / limitConn (servers inherit them). */
  readonly rateLimits: ResolvedRateLimits
  /** The top level's addHeaders (add_header), compiled; undefined: none. */
  readonly addHeaders: AddHeaders | undefined
  /** The top level's compress (gzip); undefined: off. */
  readonly compress: ResolvedCompress | undefined
  /** The top level's proxySetHeaders (proxy_set_header). */
  readonly proxySetHeaders: Readonly<Record<string, string>> | undefined
  /** The top level's access log (null: off); servers and locations inherit it. */
  readonly accessLog: ResolvedAccessLog | null
  /** Objects handlers share across locations (upstream pools). Created at compile time. */
  readonly shared: Map<string, unknown>
  /** Objects a reload may hand to the next config (env.carry), by key, with the definition they were made from. */
  readonly carried: Map<string, { readonly definition: unknown, readonly value: object }>
  /** Carried objects a newer config took over (env.handedOver): this config's app must not close them. */
  readonly handedOver: Set<object>
  /** Checks `check` and `start` run before listening (hostnames resolve): preflight.ts. */
  readonly preflight: PreflightCheck[]
  /** Warnings worth printing (conflicting server names), not errors. */
  readonly warnings: string[]
  /** Metrics: the registry handlers fill, and where they are served. */
  readonly metrics: ResolvedMetrics
}

export interface ResolvedMetrics {
  /** The metrics listener; undefined: none (a location may still serve them with `metrics()`). */
  readonly listen: { readonly kind: 'tcp', readonly host: string, readonly port: number } | { readonly kind: 'unix', readonly path: string } | undefined
  readonly registry: MetricsRegistry
  /** Whether requests are counted: a listener, or a location's `metrics()` handler. */
  on: boolean
  /** 1 for the config loaded at start; reloads count on. */
  readonly generation: number
}

export interface ResolvedListen {
  /** `0.0.0.0:8080`, `[::1]:8080`, `unix:/run/p.sock`: what `proxyctl check` prints and errors name. */
  readonly key: string
  readonly kind: 'tcp' | 'unix'
  readonly host: string
  readonly port: number
  readonly path: string
  /** 'https' when any server lists the address with `https` (nginx's `ssl` on any of its listens). */
  scheme: 'http' | 'https'
  /**
   * Each server's certificates on this TLS address (files read at load); a server listing the
   * address without `https` has none (SNI naming it gets the default server's). Undefined: plain.
   */
  tls: Map<ResolvedServer, ResolvedServerTls> | undefined
  /** HTTP/2 beside HTTP/1.1 (ALPN on TLS, prior-knowledge h2c on plain) when any server's listen of the address asks (nginx's `http2` on any listen). */
  http2: boolean
  readonly ipv6Only: boolean
  readonly servers: ResolvedServer[]
  defaultServer: ResolvedServer
  selector: ServerSelector<ResolvedServer>
}

/**
 * The settings a server and a location both carry, each the one in force at that level: its own,
 * else the enclosing level's (a location's enclosing location, its server, the top level), as
 * nginx inherits them.
 */
export interface InheritedSettings {
  /** limitReq / limitConn in force (`active` false: none; a server's also apply to its fallback). */
  readonly rateLimits: ResolvedRateLimits
  /** Types, charset, conditional and range settings. */
  readonly content: ResolvedContent
  /** add_header; undefined: none. */
  readonly addHeaders: AddHeaders | undefined
  /** compress (gzip); undefined: off (one branch on the hot path). */
  readonly compress: ResolvedCompress | undefined
  /** proxy_set_header (a proxy() without setHeaders sends these). */
  readonly proxySetHeaders: Readonly<Record<string, string>> | undefined
  /** access_log (null: off); a server's logs the requests no location answers, and those refused before one is known. */
  readonly accessLog: ResolvedAccessLog | null
}

export interface ResolvedServer extends InheritedSettings {
  /** Position in `servers`. */
  readonly position: number
  readonly keyPath: string
  readonly names: Array<string | RegExp>
  /** `$server_name`: the first name, '' if none. */
  readonly primaryName: string
  readonly root: string | undefined
  readonly index: string[] | undefined
  readonly plugins: PluginEntry[]
  /** Top-level, non-named locations, in declaration order. */
  readonly locations: ResolvedLocation[]
  readonly named: Map<string, ResolvedLocation>
  /** Every location of the server, nested and named included. */
  readonly all: ResolvedLocation[]
  tree: LocationTree<ResolvedLocation>
  readonly listens: ResolvedListen[]
  /** nginx's error_page rules of the server (locations without their own inherit them). */
  readonly errorPages: ErrorPageRules | undefined
  /** Server-level rewrites, run before a location is selected. */
  readonly rewrites: readonly RewriteRule[]
  /** Server-level return: answers every request before any location. */
  returnTo: { handler: LocationHandler, compiled?: CompiledHandler, routeUrl: string } | undefined
  /** allow/deny rules of the server (locations without their own inherit them). */
  readonly access: readonly AccessRule[]
  /** Client limits of the server (its locations inherit them); a listener applies its default server's connection ones. */
  readonly limits: ResolvedConnectionLimits
  /** Answers when no location matches (404 unless the server sets `handler`). */
  fallback: { handler: LocationHandler, compiled?: CompiledHandler, routeUrl: string }
}

export interface ResolvedLocation extends LocationNode, InheritedSettings {
  readonly id: number
  /** The key as written: `^~ /images/`. */
  readonly key: string
  readonly keyPath: string
  readonly kind: LocationKind
  readonly path: string
  readonly regex?: RegExp
  readonly parent: ResolvedLocation | undefined
  readonly children: ResolvedLocation[]
  readonly server: ResolvedServer
  readonly handler: LocationHandler | undefined
  compiled: CompiledHandler | undefined
  /** Set by the app when the handler may answer without the Fastify chain (CompiledHandler.direct). */
  fastPath?: (ctx: RequestContext, req: IncomingMessage, res: ServerResponse) => void
  readonly plugins: PluginEntry[]
  /** Inherited from enclosing locations and the server, absolute. */
  readonly root: string | undefined
  readonly alias: string | undefined
  readonly index: string[]
  /** error_page rules in force here: its own, else the enclosing location's, else the server's. */
  readonly errorPages: ErrorPageRules | undefined
  /** The location's own rewrites, run after it is selected. */
  readonly rewrites: readonly RewriteRule[]
  /** allow/deny rules in force here (empty: everyone). */
  readonly access: readonly AccessRule[]
  /** Client limits in force here. */
  readonly limits: ResolvedRequestLimits
  /** nginx's `internal`: a client's own request (no internal redirect yet) gets 404. */
  readonly internal: boolean
  /** Variables templates may use here (named groups of every location regex, as nginx). */
  readonly scope: CompileScope
  /** The internal Fastify route of this location. */
  readonly routeUrl: string
}

/** One error_page rule: where to go, and the status to answer with. */
export interface ErrorPageRule {
  readonly target: Template
  /** A number: answer with it (`=200`); 'target': whatever the target answers (`=`); 'keep': the original status. */
  readonly status: number | 'target' | 'keep'
  /** Source, for `proxyctl check`. */
  readonly source: string
}
export type ErrorPageRules = ReadonlyMap<number, ErrorPageRule>
