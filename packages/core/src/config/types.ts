import type { ListenTlsConfig, UpstreamTlsConfig } from './tls.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import type { CompileScope, Template } from '../variables/types.js'
import type { RequestContext } from '../routing/request-context.js'
import type { ResolvedConfig, ResolvedLocation, ResolvedServer } from './model.js'
import type { MetricsRegistry } from '../metrics/registry.js'

/**
 * The user's config, as written in `proxy.config.ts` and passed to `defineConfig`.
 * Every key is optional unless marked; the validator names the key path of anything wrong.
 */
export interface ProxyConfig extends ConnectionLimits, ContentSettings, HeaderSettings, LogSettings, RateLimitSettings, CompressSettings {
  /** Virtual servers, as nginx's `server {}` blocks. Selected by listen address, then Host. */
  servers: ServerConfig[]
  /** Named upstream pools, referenced by `proxy('http://NAME')`. */
  upstreams?: Record<string, UpstreamConfig>
  /** Fastify plugins applied to every location of every server. */
  plugins?: PluginEntry[]
  /** Log level of the proxy's logger (pino). Default `info`. */
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Milliseconds in-flight requests get to finish on SIGTERM/SIGINT before connections are cut. Default 10000. */
  shutdownTimeout?: number
  /** Worker processes serving the same listeners (node:cluster). Default 1 (no cluster). */
  workers?: number | 'auto'
  /**
   * nginx's `map`: variables computed from another when read, by name without `$`:
   * `{ connection_upgrade: { source: '$http_upgrade', values: { default: 'upgrade', '': 'close' } } }`.
   * Variants: exact strings (case-insensitive), `~regex` / `~*regex` (captures usable in the value),
   * with `hostnames` also `*.example.com`, `example.*`, `.example.com`; `default` when none matches.
   */
  maps?: Record<string, MapConfig>
  /** Folder for request and response bodies buffered to disk (nginx's client_body_temp_path, proxy_temp_path). Default: the OS temp folder. */
  tempPath?: string
  /**
   * nginx's `log_format`: formats named once, used by `accessLog: { format: NAME }`. A template of
   * variables (`'$remote_addr "$request" $status $request_time'`), or `{ format, escape }` with
   * nginx's `escape=` (`default`, `json`, `none`).
   */
  logFormats?: Record<string, string | { format: string, escape?: 'default' | 'json' | 'none' }>
  /**
   * nginx's `limit_req_zone`: named request-rate zones, used by `limitReq: { zone }`.
   * `{ perip: { key: '$binary_remote_addr', rate: '10r/s' } }`.
   */
  limitReqZones?: Record<string, LimitReqZoneConfig>
  /** nginx's `limit_conn_zone`: named zones counting requests in flight per key, used by `limitConn: { zone, max }`. */
  limitConnZones?: Record<string, LimitConnZoneConfig>
  /**
   * Prometheus metrics and the live status page, on a listener of their own (never on the
   * proxied servers; a location may serve the metrics with the `metrics()` handler).
   */
  metrics?: MetricsConfig
  /**
   * nginx's `proxy_cache_path` + `keys_zone`: named caches, used by `proxy(url, { cache: { zone } })`.
   * `{ main: { store: 'memory', maxSize: '256m' } }`, `{ disk: { store: { path: './cache' }, maxSize: '1g', inactive: 600000 } }`,
   * `{ fleet: { store: { redis: 'redis://127.0.0.1:6379' } } }`.
   */
  caches?: Record<string, CacheZoneConfig>
}

/** nginx's `proxy_cache_path PATH keys_zone=NAME:SIZE max_size=... inactive=...`. */
export interface CacheZoneConfig {
  /** 'memory' (default; this process, LRU bounded in bytes), `{ path }` (a folder, survives restarts) or `{ redis }` (shared by a fleet). */
  store?: 'memory' | { path: string } | { redis: string }
  /** max_size: the least recently used entries go beyond it. Default '64m' in memory, '1g' on disk, '256m' on Redis. */
  maxSize?: Size
  /** inactive: ms an entry not asked for is kept, fresh or not. Default 600000 (nginx's 10m). */
  inactive?: number
  /** The largest answer stored (larger ones pass uncached). Default an eighth of maxSize. */
  maxEntrySize?: Size
}

/** Where a limit zone keeps its state: this process's memory (default), or a Redis shared by several proxyctl instances. */
export type LimitStore = 'memory' | { redis: string }

/** nginx's `limit_req_zone KEY zone=NAME:SIZE rate=RATE`. */
export interface LimitReqZoneConfig {
  /** A template; a request whose key renders empty is not limited. `$binary_remote_addr`, `$server_name`, `$http_x_api_key`... */
  key: string
  /** Requests per second or per minute: `'10r/s'`, `'30r/m'`. */
  rate: `${number}r/s` | `${number}r/m`
  /** nginx's zone size: bounds the keys kept (64 bytes each: '1m' is 16384 keys); the least recently used goes first. Default '10m'. */
  size?: Size
  /** Default 'memory'. */
  store?: LimitStore
}

/** nginx's `limit_conn_zone KEY zone=NAME:SIZE`. */
export interface LimitConnZoneConfig {
  /** A template; a request whose key renders empty is not limited. */
  key: string
  /** nginx's zone size: bounds the keys counted at once (32 bytes each: '1m' is 32768 keys); a new key beyond it is refused. Default '10m'. */
  size?: Size
  /** Default 'memory'. */
  store?: LimitStore
}

/** nginx's `limit_req zone=NAME [burst=N] [nodelay | delay=N]`. */
export interface LimitReqConfig {
  /** A name from `limitReqZones`. */
  zone: string
  /** Requests beyond the rate that wait (or pass, with nodelay) instead of being refused. Default 0. */
  burst?: number
  /** Pass the burst at once instead of spacing it at the rate. */
  nodelay?: true
  /** Requests beyond the rate passed at once before the rest of the burst is delayed. Default 0. */
  delay?: number
}

/** nginx's `limit_conn ZONE NUMBER`. */
export interface LimitConnConfig {
  /** A name from `limitConnZones`. */
  zone: string
  /** Requests in flight per key (a WebSocket tunnel counts for its lifetime). */
  max: number
}

/**
 * nginx's limit_req and limit_conn at a level (top, server, location): `limitReq` and
 * `limitConn` replace what the enclosing level sets when set (no merge, as nginx); the others
 * are inherited one by one.
 */
export interface RateLimitSettings {
  /** nginx's `limit_req` (one, or several all applied). `[]` clears the inherited ones. */
  limitReq?: LimitReqConfig | LimitReqConfig[]
  /** nginx's `limit_req_status`: the status of a refused request (400-599). Default 503. */
  limitReqStatus?: number
  /** nginx's `limit_req_log_level`: the level of refusals; delays log one level lower. Default 'error'. */
  limitReqLogLevel?: 'info' | 'notice' | 'warn' | 'error'
  /** nginx's `limit_req_dry_run`: count and log, never refuse or delay. Default false. */
  limitReqDryRun?: boolean
  /** nginx's `limit_conn` (one, or several all applied). `[]` clears the inherited ones. */
  limitConn?: LimitConnConfig | LimitConnConfig[]
  /** nginx's `limit_conn_status`. Default 503. */
  limitConnStatus?: number
  /** nginx's `limit_conn_log_level`. Default 'error'. */
  limitConnLogLevel?: 'info' | 'notice' | 'warn' | 'error'
  /** nginx's `limit_conn_dry_run`. Default false. */
  limitConnDryRun?: boolean
}

export interface MetricsConfig {
  /**
   * Where `/metrics` (Prometheus text), `/status.json` and the status page (`/`) are served:
   * `'127.0.0.1:9145'`, a port alone (`9145`: 127.0.0.1, not every address), or `'unix:/run/proxyctl-metrics.sock'`.
   */
  listen: string | number
}

/**
 * nginx's `access_log`: one line per request, written after its answer, by the location that
 * answered (its own setting, else the enclosing location's, the server's, the top level's).
 */
export interface LogSettings {
  /**
   * `false`: no access log here. `true`: `combined` to stdout. A path (`'logs/access.log'`,
   * relative to the config's folder, or `'stdout'`): `combined` there. Or `{ path, format }`:
   * `format` is `'combined'` (nginx's default), `'json'`, a name from `logFormats`, or a template.
   * Default: `combined` to stdout for `proxyctl start`.
   */
  accessLog?: AccessLogConfig
}

export type AccessLogConfig = boolean | string | { path?: string, format?: string }

export interface MapConfig {
  /** The template matched: `$http_host`, `$uri`, `$http_upgrade`... */
  source: string
  /** Variant → value (a template). */
  values: Record<string, string>
  /** nginx's `hostnames`: variants may be host masks (`*.example.com`, `example.*`, `.example.com`). */
  hostnames?: boolean
}

/** nginx's sizes: bytes, or a number with `k`, `m` or `g` (`'8k'`, `'1m'`). */
export type Size = number | `${number}` | `${number}${'k' | 'K' | 'm' | 'M' | 'g' | 'G'}`

/**
 * What one request may send and hold, as nginx's directives of the same names; a location's own
 * replace its enclosing location's, its server's and the top level's. Times in ms.
 */
export interface RequestLimits {
  /** client_max_body_size: a larger body is answered 413 and never reaches an upstream; 0: no limit. Default '1m'. */
  clientMaxBodySize?: Size
  /** client_body_buffer_size: a buffered request body larger than this is kept in a temp file. Default '16k'. */
  clientBodyBufferSize?: Size
  /** client_body_timeout: the longest wait between two reads of a request body; then the connection is closed. Default 60000. */
  clientBodyTimeout?: number
  /** send_timeout: the longest wait between two successful writes to a client; then the connection is closed. Default 60000. */
  sendTimeout?: number
  /** keepalive_timeout: how long an idle keep-alive connection stays open; 0 disables keep-alive. Default 75000. */
  keepaliveTimeout?: number
  /** keepalive_requests: requests served on one connection before it is closed. Default 1000. */
  keepaliveRequests?: number
}

/** What the top level and a server may set: the request limits plus those applied before a location is known. */
export interface ConnectionLimits extends RequestLimits {
  /** client_header_timeout: the longest a client may take to send a whole request head; then the connection is closed. Default 60000. */
  clientHeaderTimeout?: number
  /** large_client_header_buffers, as nginx writes it: a request line longer than SIZE is 414, a header line 400, a head over NUMBER × SIZE 400. Default '4 8k'. */
  largeClientHeaderBuffers?: `${number} ${Size}`
  /** More header lines than this in one request: 400. Default 1000. */
  maxHeaders?: number
  /** underscores_in_headers: keep request headers whose name has `_`; by default they are dropped, as nginx. */
  underscoresInHeaders?: boolean
}

/**
 * How answers are labelled and which conditional and range requests are honoured, as nginx's
 * directives of the same names; a location's own replace its enclosing location's, its server's
 * and the top level's.
 */
export interface ContentSettings {
  /**
   * nginx's `types`, as nginx writes it: MIME type → extensions (`{ 'application/wasm': ['wasm'] }`).
   * Added to the inherited table (nginx's mime.types at the top), an extension named here moving
   * to its new type; with `replaceTypes: true` it is the whole table, as nginx's `types {}` block.
   */
  types?: Record<string, string | string[]>
  /** `types` here replaces the inherited table instead of extending it. Default false. */
  replaceTypes?: boolean
  /** nginx's `default_type`: the type of a name whose extension is not in `types`. Default 'application/octet-stream' (the stock nginx.conf's). */
  defaultType?: string
  /** nginx's `charset`: adds `; charset=X` to text/html, text/plain, text/xml, text/vnd.wap.wml, application/javascript and application/rss+xml answers. Default none (`false`, nginx's `charset off`). */
  charset?: string | false
  /** nginx's `max_ranges`: a Range with more ranges than this is answered with the whole file; 0 turns ranges off. Default: no bound. */
  maxRanges?: number
  /** nginx's `if_modified_since`: 'exact' (304 only for the file's own date), 'before' (for that date or a later one), 'off'. Default 'exact'. */
  ifModifiedSince?: 'exact' | 'before' | 'off'
}

/**
 * nginx's gzip module (and ngx_brotli's brotli): answers compressed by the client's
 * Accept-Encoding. README, "Compression".
 */
export interface CompressSettings {
  /**
   * `true`: nginx's `gzip on` with its defaults; `false`: off (nginx's default); an object: those
   * defaults with its keys, replacing the enclosing level's `compress` whole. Proxied, static and
   * `respond()` answers; never an answer that has a Content-Encoding already.
   */
  compress?: boolean | CompressConfig
}

export interface CompressConfig {
  /** The codings offered, in order of preference: `['br', 'gzip']`. Default `['gzip']` (nginx's gzip). */
  encodings?: Array<'br' | 'gzip'>
  /** gzip_types: MIME types compressed besides text/html (always); `'*'`: any. Default none. */
  types?: string[]
  /** gzip_min_length: answers with a Content-Length below this are not compressed. Default 20. */
  minLength?: number
  /** gzip_comp_level, 1-9 (brotli's quality too). Default 1. */
  level?: number
  /**
   * gzip_proxied: for requests that came through a proxy (a Via header): false (nginx's `off`,
   * the default), true (`any`), or nginx's keywords: 'expired', 'no-cache', 'no-store', 'private',
   * 'no_last_modified', 'no_etag', 'auth', 'any'.
   */
  proxied?: boolean | Array<'expired' | 'no-cache' | 'no-store' | 'private' | 'no_last_modified' | 'no_etag' | 'auth' | 'any'>
  /** gzip_vary: `Vary: Accept-Encoding` on answers that may be compressed. Default false. */
  vary?: boolean
}

/**
 * Headers added to answers and to proxied requests, as nginx's `add_header` and
 * `proxy_set_header`: a level that sets any replaces everything the enclosing levels set (no
 * merge), as nginx.
 */
export interface HeaderSettings {
  /**
   * nginx's `add_header`: response headers added to this level's answers (proxied, static files,
   * `respond()`, redirects), on 200, 201, 204, 206, 301, 302, 303, 304, 307 and 308 only, or on
   * every status (error pages included) with `always`. Values are templates; one that renders
   * empty is not sent. Added, not replacing: an upstream's header of the same name stays.
   * `{ 'X-Frame-Options': { value: 'DENY', always: true }, 'X-Served-By': '$hostname' }`.
   * `{}` clears the inherited ones.
   */
  addHeaders?: Record<string, string | { value: string, always?: boolean }>
  /**
   * nginx's `proxy_set_header` at this level: request headers set on the way upstream by every
   * `proxy()` / `websocket()` below that has no `setHeaders` of its own (templates; `''` removes
   * one). `{ Host: '$http_host', 'X-Real-IP': '$remote_addr' }`.
   */
  proxySetHeaders?: Record<string, string>
}

/**
 * A listen address:
 * - `8080` or `'8080'`: every IPv4 address (`0.0.0.0:8080`), as nginx's `listen 8080`;
 * - `'127.0.0.1:8080'`, `'[::]:8080'`, `'[::1]:8080'`, `'localhost:8080'`;
 * - `'unix:/run/proxy.sock'`;
 * - an object to add `defaultServer`, `https`, `http2`, or `ipv6Only`.
 */
export type ListenConfig = number | string | ListenObject

export interface ListenObject {
  /** `host:port`, `[v6]:port`, a port, or `unix:/path`. */
  address: string | number
  /** This server answers requests whose Host matches no server on this address. */
  defaultServer?: boolean
  /**
   * Serve TLS on this address with this server's certificate(s), chosen by SNI among the servers
   * sharing the address (nginx's `listen ... ssl` with ssl_certificate per server). PEM contents
   * (strings or Buffers) or paths to PEM files, relative to the config's folder.
   */
  https?: ListenTlsConfig
  /**
   * Serve HTTP/2 on this address too (nginx's `listen ... http2`; on any server's listen of the
   * address, for every server on it). With `https`: ALPN offers `h2` and `http/1.1`. Without:
   * h2c with prior knowledge beside HTTP/1.1 on the same port (a connection that opens with the
   * HTTP/2 preface speaks h2c). Default false, as nginx.
   */
  http2?: boolean
  /** For `[::]`: accept only IPv6 (nginx's default, `ipv6only=on`). Default true. */
  ipv6Only?: boolean
}

export interface ServerConfig extends ConnectionLimits, ContentSettings, HeaderSettings, LogSettings, RateLimitSettings, CompressSettings {
  /** Addresses this server answers on. Default `80` when running as root, else `8000` (as nginx). */
  listen?: ListenConfig | ListenConfig[]
  /**
   * Names matched against the request's Host: exact (`example.com`), leading wildcard
   * (`*.example.com`), trailing wildcard (`www.example.*`), `.example.com` (both the name and its
   * subdomains), a regex (`'~^api\\d+\\.example\\.com$'` or a RegExp). The first is `$server_name`.
   */
  serverName?: string | RegExp | Array<string | RegExp>
  /** Document root for static handlers; relative paths resolve against the config file's folder. */
  root?: string
  /** Fastify plugins applied to every location of this server. */
  plugins?: PluginEntry[]
  /**
   * Locations keyed by nginx's location syntax:
   * `'= /exact'`, `'/prefix'`, `'^~ /prefix'`, `'~ regex'`, `'~* case-insensitive regex'`, `'@named'`.
   */
  locations?: Record<string, LocationConfig | LocationHandler>
  /** Handler for requests no location matches. Default: 404. */
  handler?: LocationHandler
  /** nginx's error_page for this server's locations (a location's own `errorPages` replace these). */
  errorPages?: ErrorPages
  /** Options for handlers of this server (e.g. `index` for static files), inherited by locations. */
  index?: string[]
  /** nginx's allow/deny, in order, first match wins: `['allow 10.0.0.0/8', 'allow unix:', 'deny all']`; denied: 403. Locations without their own inherit these. */
  access?: string[]
  /** nginx's server-level rewrite: run on every request before a location is selected. */
  rewrite?: RewriteConfig[]
  /** nginx's server-level return: this handler answers every request, after the server's rewrites and before any location (`respond(301, 'https://$host$request_uri')`). */
  return?: LocationHandler
}

/**
 * nginx's `rewrite`: `'^/old/(.*)$ /new/$1 permanent'` (REGEX REPLACEMENT [last|break|redirect|permanent])
 * or the same as an object.
 */
export type RewriteConfig = string | { regex: string, replacement: string, flag?: 'last' | 'break' | 'redirect' | 'permanent' }

export interface LocationConfig extends RequestLimits, ContentSettings, HeaderSettings, LogSettings, RateLimitSettings, CompressSettings {
  /** What answers requests selected for this location (`respond(...)`, `proxy(...)`, ...). */
  handler?: LocationHandler
  /** Fastify plugins registered in this location's encapsulated context, before its handler. */
  plugins?: PluginEntry[]
  /** Nested locations; prefixes must start with this location's prefix (as nginx requires). */
  locations?: Record<string, LocationConfig | LocationHandler>
  /** Document root for this location (overrides the server's). */
  root?: string
  /** Replaces the location prefix with this path when mapping to files (nginx `alias`). */
  alias?: string
  /** Index files tried for a URI ending in `/`, first existing wins. */
  index?: string[]
  /** nginx's error_page; replaces the server's (and an enclosing location's) entirely, as nginx. */
  errorPages?: ErrorPages
  /** nginx's allow/deny for this location (replacing the server's and an enclosing location's): `['allow 127.0.0.1', 'deny all']`. */
  access?: string[]
  /** nginx's rewrite in this location, run after it is selected (not inherited, as nginx). */
  rewrite?: RewriteConfig[]
  /** nginx's `internal`: reached only by internal redirects (tryFiles fallbacks, errorPages, index files); a client asking for it gets 404. */
  internal?: boolean
}

/**
 * nginx's error_page: status codes (one, or several separated by spaces) to a URI, a named
 * location or an absolute URL, optionally changing the status:
 * `{ '404': '/404.html', '500 502 503 504': '/50x.html', '403': '=200 @denied', '410': '= /gone' }`.
 * `=CODE` answers with CODE, a bare `=` with whatever the target answers; otherwise the original
 * status is kept. An `http(s)://` target is a 302 redirect (or `=301`...).
 */
export type ErrorPages = Record<string, string>

/** A Fastify plugin, optionally with options: `plugin`, `[plugin, opts]` or `{ plugin, options }`. */
export type PluginEntry =
  | AnyFastifyPlugin
  | [AnyFastifyPlugin, Record<string, unknown>?]
  | { plugin: AnyFastifyPlugin, options?: Record<string, unknown> }

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFastifyPlugin = FastifyPluginAsync<any> | FastifyPluginCallback<any> | { default: FastifyPluginAsync<any> }

/* ---------------------------------------------------------------- upstreams */

export interface UpstreamConfig {
  /** Servers of the pool: `host:port`, `[v6]:port`, `hostname:port`, `unix:/path.sock`, or an object. */
  servers: Array<string | UpstreamServerConfig>
  /** How a server is chosen. Default `'round-robin'` (smooth weighted, nginx's). */
  balance?: BalancePolicy
  /** Milliseconds to establish a connection to a server (nginx's proxy_connect_timeout). Default 60000. */
  connectTimeout?: number
  /** Milliseconds between DNS re-resolutions of hostname servers. Default 30000; 0 resolves once. */
  resolveInterval?: number
  /** Active health checks. Off unless set. */
  healthCheck?: HealthCheckConfig
  /** TLS to the servers of `proxy('https://NAME')`: verification (on by default), CA, SNI name, client certificate. */
  tls?: UpstreamTlsConfig
}

export interface UpstreamServerConfig {
  address: string
  /** Relative share of requests. Default 1. */
  weight?: number
  /** Failures within `failTimeout` that mark the server unavailable. Default 1; 0 disables accounting. */
  maxFails?: number
  /** Window for counting failures, and how long the server then stays unavailable (ms). Default 10000. */
  failTimeout?: number
  /** Used only when every primary server is unavailable. */
  backup?: boolean
  /** Permanently unavailable. */
  down?: boolean
  /** Limit of concurrent connections to this server; 0 is unlimited. Default 0. */
  maxConns?: number
}

export type BalancePolicy =
  | 'round-robin'
  | 'least-conn'
  | 'ip-hash'
  | 'random-two'
  | { hash: string, consistent?: boolean }
  | CustomBalancer

/** A user's policy: from the request and the servers available now to the one to use. */
export type CustomBalancer = (request: RequestContext, servers: ReadonlyArray<{ address: string, weight: number, activeConnections: number }>) => number

export interface HealthCheckConfig {
  /** Milliseconds between checks. Default 5000. */
  interval?: number
  /** Request path. Default `/`. */
  path?: string
  /** Accepted status range, inclusive. Default `[200, 399]`. */
  expectStatus?: [number, number]
  /** Consecutive successes that mark a down server up. Default 2. */
  rise?: number
  /** Consecutive failures that mark an up server down. Default 3. */
  fall?: number
  /** Milliseconds a check may take. Default 2000. */
  timeout?: number
}

/* ---------------------------------------------------------------- handlers */

/**
 * What answers a location's requests. Built by handler factories (`respond`, `proxy`, ...);
 * user packages make their own with `defineHandler`.
 *
 * `compile` runs once when the config loads (so `proxyctl check` reports its errors) and returns
 * a Fastify plugin registered in the location's encapsulated context, plus the route handler.
 */
export interface LocationHandler {
  readonly [kHandlerBrand]: true
  /** Short name shown by `proxyctl check`, e.g. `proxy http://app`. */
  readonly description: string
  compile (env: HandlerCompileEnv): CompiledHandler
}

export const kHandlerBrand: unique symbol = Symbol.for('proxyctl.handler') as never

export interface CompiledHandler {
  /** Registered in the location's own context before the route: hooks, decorators, sub-plugins. */
  plugin?: (instance: FastifyInstance) => Promise<void> | void
  /** Answers a request selected for this location. */
  handle: (request: FastifyRequest, reply: FastifyReply) => unknown
  /**
   * nginx's auto_redirect (set by proxy_pass and friends): on a prefix location ending in `/`, a
   * request for the prefix without its slash gets 301 to it, regexes not checked.
   */
  autoRedirect?: boolean
  /**
   * The same answer without Fastify's per-request objects. Core uses it only where nothing could
   * tell the difference: no plugins in the location's scopes (global, server, enclosing
   * locations, its own) and no error pages; everywhere else `handle` runs in the Fastify chain.
   */
  direct?: (ctx: RequestContext, req: IncomingMessage, res: ServerResponse, log: FastifyBaseLogger) => void
  /**
   * For `proxyctl explain`: what this handler would do with the request in `ctx`, without doing
   * it (no connection, no file opened; a file's existence may be checked). Never called while
   * serving.
   */
  explain?: (ctx: RequestContext) => HandlerExplanation | Promise<HandlerExplanation>
}

/**
 * What a handler would do with one request (`proxyctl explain --json`'s `handler`): `kind` names
 * the shape (`respond`, `proxy`, `websocket`, `static`, `try_files`; README, "explain").
 */
export interface HandlerExplanation {
  readonly kind: string
  readonly [field: string]: unknown
}

/** What a handler may use while compiling. Errors it throws should be `env.error(...)`. */
export interface HandlerCompileEnv {
  /** Key path of this handler, for error messages. */
  readonly keyPath: string
  readonly config: ResolvedConfig
  readonly server: ResolvedServer
  /** Undefined for a server's fallback handler. */
  readonly location: ResolvedLocation | undefined
  /** Variables visible here (captures of enclosing regex locations included). */
  readonly scope: CompileScope
  /** Compile a template once, now; unknown variables throw a ConfigError at `keyPath + subPath`. */
  template (source: string, subPath?: string): Template
  /** Check that a named location exists on this server; throws a ConfigError otherwise. */
  namedLocation (name: string, subPath?: string): ResolvedLocation
  /** A ConfigError at `keyPath + subPath`. */
  error (message: string, subPath?: string): Error
  /** One object per key for the whole app: upstream pools, caches shared by locations. */
  shared <T>(key: string, create: () => T): T
  /**
   * One object per key for the whole app that a reload hands on: when the config before the
   * reload carried `key` with a deep-equal `definition` (node:util isDeepStrictEqual), this is
   * that very object (an upstream pool keeps its connections and health state, a location's
   * tunnels stay open); else `create()`. See `handedOver` for closing it.
   */
  carry <T extends object>(key: string, definition: unknown, create: () => T): T
  /**
   * Whether a newer config took `value` (from `carry`) over: closing this app (its onClose hooks)
   * must then leave it alone. False while this config is the one in force.
   */
  handedOver (value: object): boolean
  /** A check `proxyctl check` and `start` run before listening (a hostname resolves), reported at `keyPath + subPath`. */
  preflight (run: () => Promise<string | undefined>, subPath?: string): void
  /** A check that `host` resolves, worded as nginx's "host not found in upstream". */
  hostResolves (host: string, subPath?: string): void
  /**
   * The process's metrics: register a family here at compile time, keep the children you will
   * update per request (`env.metrics.counter('myplugin_rejected_total', 'help', ['zone']).child('api')`).
   */
  readonly metrics: MetricsRegistry
}
