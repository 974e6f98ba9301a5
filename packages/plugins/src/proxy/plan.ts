import { isIP } from 'node:net'
import { type CounterChild, type HandlerCompileEnv, type RequestContext, type Size, type Template } from '@proxyctl/core'
import { compileTemplate, limitRejection, loadUpstreamTls, parseSize, type AddHeaders, type PhaseHooks, type UpstreamTlsConfig } from '@proxyctl/core/internal'
import type { ConfigError } from '@proxyctl/core'
import { UpstreamPool } from '../upstream/pool.js'
import { compileRequestHeaders, compileResponseHeaders, type CompiledRequestHeaders, type CompiledResponseHeaders, type HeaderOptions } from './headers.js'
import type { SpoolLimits } from './spool.js'
import { compileRedirect, type RedirectOption, type RedirectRewriter } from './redirect.js'
import { compileCache, type CacheOptions, type CachePlan } from '../cache/options.js'
import { parseProxyTarget, ProxyTargetError, type ParsedProxyTarget } from './target.js'
import { compileUriMapping, type UriMapping } from './uri.js'

/**
 * What `proxy()` (and `websocket()`, which shares it) compiles once at config load: the target,
 * its pool, the URI mapping, header rules, timeouts and nextUpstream rules. The exchanges of
 * its requests read it (exchange.ts).
 */

/** Cases nginx's proxy_next_upstream names; `error` and `timeout` are its default. */
export type NextUpstreamCase = 'error' | 'timeout' | 'invalid_header' | 'http_500' | 'http_502' | 'http_503' | 'http_504' | 'http_403' | 'http_404' | 'http_429' | 'non_idempotent'

export interface ProxyOptions extends HeaderOptions {
  /**
   * nginx's proxy_redirect: `'default'` (the default) rewrites `Location`/`Refresh` pointing at the
   * target back to the location; `false` is off; or a list of `{ from, to }` (string prefix or
   * RegExp/`'~ re'`, `to` a template).
   */
  redirect?: RedirectOption
  /** ms to connect (nginx's proxy_connect_timeout); for a direct URL target. Named upstreams set their own. Default 60000. */
  connectTimeout?: number
  /**
   * TLS to a direct `https://` target (named upstreams set their own `tls`): `verify` (default
   * true, the certificate and its name checked against the system's CAs or `ca`), `ca`,
   * `serverName` (SNI and the name checked; default the target's host), `cert` and `key` (mTLS).
   */
  tls?: UpstreamTlsConfig
  /** ms without a byte from the upstream, while waiting for headers or between body reads (proxy_read_timeout). Default 60000. */
  readTimeout?: number
  /** ms the upstream may stop taking the request body (proxy_send_timeout). Default 60000. */
  sendTimeout?: number
  /**
   * nginx's proxy_next_upstream: when an attempt fails with one of `on`, try the next server.
   * Default `{ on: ['error', 'timeout'] }`; `false` never retries.
   */
  nextUpstream?: false | { on?: NextUpstreamCase[], tries?: number, timeout?: number }
  /** nginx's proxy_intercept_errors: upstream answers >= 300 with an `errorPages` rule go through it. Default false. */
  interceptErrors?: boolean
  /**
   * nginx's proxy_request_buffering: read the whole request body (in memory up to the location's
   * clientBodyBufferSize, beyond it in a temp file under tempPath) before the upstream is
   * contacted, then send it with Content-Length; such a request may be retried on the next server.
   * `false` streams the body as it comes (no retry once it started). Default true.
   */
  requestBuffering?: boolean
  /**
   * nginx's proxy_buffering: the upstream's answer is read at the upstream's speed, into
   * `buffers` of memory then a temp file under `tempPath`, while a slow client is fed as it reads;
   * the upstream connection is free once the upstream is done. `false`: the client's pace holds
   * the upstream back. The upstream's `X-Accel-Buffering: yes|no` decides per response. Default true.
   */
  buffering?: boolean
  /** Memory per buffered response before the temp file (proxy_buffers, 8 8k). Default '64k'. */
  buffers?: Size
  /** Temp file cap per buffered response (proxy_max_temp_file_size); then the upstream waits. 0: memory only. Default '1g'. */
  maxTempFileSize?: Size
  /**
   * nginx's proxy_ignore_headers: upstream headers whose meaning is not acted on (any case).
   * `X-Accel-Redirect`: the answer is passed on instead of followed; `X-Accel-Buffering`: the
   * location's `buffering` holds; `X-Accel-Expires`, `Expires`, `Cache-Control`, `Set-Cookie`,
   * `Vary`: they do not decide what the location's `cache` stores (README, "Proxy cache"). The
   * others nginx takes (`X-Accel-Limit-Rate`, `X-Accel-Charset`) are accepted and change nothing
   * here (no rate, no charset conversion).
   * Ignoring is not hiding: hideHeaders decides what the client sees. Default none.
   */
  ignoreHeaders?: Array<IgnorableHeader | Lowercase<IgnorableHeader>>
  /** nginx's proxy_cache and its proxy_cache_* directives: README, "Proxy cache". */
  cache?: CacheOptions
}

/** What nginx's proxy_ignore_headers accepts. */
export const IGNORABLE_HEADERS = ['X-Accel-Redirect', 'X-Accel-Expires', 'X-Accel-Limit-Rate', 'X-Accel-Buffering', 'X-Accel-Charset', 'Expires', 'Cache-Control', 'Set-Cookie', 'Vary'] as const
export type IgnorableHeader = typeof IGNORABLE_HEADERS[number]

type UpstreamPhase = 'upstreamRequest' | 'upstreamResponse' | 'upstreamError'

/** Everything one `proxy()` compiled at config load. Shared by its requests. */
export interface ProxyPlan {
  readonly upstreamNames: ReadonlySet<string>
  readonly target: ParsedProxyTarget | undefined
  readonly targetTemplate: Template | undefined
  readonly pool: UpstreamPool | undefined
  readonly poolFor: (t: ParsedProxyTarget) => UpstreamPool
  readonly mapping: UriMapping
  readonly hashKey: Template | undefined
  readonly requestHeaders: CompiledRequestHeaders
  readonly responseHeaders: CompiledResponseHeaders
  readonly redirect: RedirectRewriter | null
  /** addHeaders (add_header) in force at the location, for its answers and its own error pages. */
  readonly addHeaders: AddHeaders | undefined
  readonly readTimeout: number
  readonly sendTimeout: number
  readonly next: ReadonlySet<NextUpstreamCase>
  readonly nextStatuses: ReadonlySet<number>
  readonly tries: number
  readonly tryTimeout: number
  readonly interceptErrors: boolean
  readonly requestBuffering: boolean
  /** Where buffered bodies beyond clientBodyBufferSize go (the config's tempPath). */
  readonly tempPath: string
  /** proxyctl_limit_rejections_total of the body limits refused while reading (a chunked body over clientMaxBodySize, clientBodyTimeout). */
  readonly bodyRejections: Readonly<Record<string, CounterChild>>
  /** proxy_buffering's default for this location's responses (X-Accel-Buffering may change it). */
  readonly buffering: boolean
  /** A buffered response's memory, temp file cap and folder. */
  readonly spool: SpoolLimits
  /** An upstream's X-Accel-Redirect is followed (not in ignoreHeaders). */
  readonly accelRedirect: boolean
  /** An upstream's X-Accel-Buffering decides buffering (not in ignoreHeaders). */
  readonly accelBuffering: boolean
  /** proxy_cache: the location's cache; undefined: none. */
  readonly cache: CachePlan | undefined
  /** The upstream phases' hooks in the location's scope (message hooks are message mode's: websocket/messages.ts). */
  hooks: { [P in UpstreamPhase]: Array<PhaseHooks[P]> }
}

/** Numbers the proxy() calls with their own tls, so each keeps its own pools. */
let tlsPlans = 0
/** The path and query sent upstream for `ctx` now (nginx's proxy_pass URI rules, uri.ts); `renderedUri`: a rendered target's URI part. */
export function upstreamPath (plan: ProxyPlan, ctx: RequestContext, renderedUri: string | undefined): string {
  return plan.mapping({ uri: ctx.uri, requestUri: ctx.requestUri, args: ctx.args, uriChanged: ctx.uriChanged, internal: ctx.internalRedirects > 0, rewrittenInLocation: ctx.rewrittenInLocation }, renderedUri)
}

export function directPools (env: HandlerCompileEnv): Map<string, UpstreamPool> {
  return env.shared('proxy:direct-pools', () => new Map<string, UpstreamPool>())
}

export function compilePlan (raw: string, options: ProxyOptions, env: HandlerCompileEnv): ProxyPlan {
  const upstreamNames = new Set(env.config.upstreams.keys())
  let parsed
  try { parsed = parseProxyTarget(raw, upstreamNames) } catch (err) {
    if (err instanceof ProxyTargetError) throw env.error(err.message)
    throw err
  }
  const location = env.location === undefined ? undefined : { kind: env.location.kind, path: env.location.path }
  let mapping: UriMapping
  try {
    mapping = compileUriMapping({ uriPart: parsed.kind === 'static' ? parsed.uriPart : undefined, location, hasVariables: parsed.kind === 'template' })
  } catch (err) { throw env.error((err as Error).message) }

  const direct = directPools(env)
  const tlsErrors: ConfigError[] = []
  const directTls = options.tls === undefined ? undefined : loadUpstreamTls(options.tls, env.config.baseDir, '.tls', tlsErrors)
  const first = tlsErrors[0]
  if (first !== undefined) throw env.error(first.message, first.keyPath)
  const tlsKey = directTls === undefined ? '' : `|tls${++tlsPlans}`
  const poolFor = (t: ParsedProxyTarget): UpstreamPool => {
    if (t.address.type === 'upstream') {
      const name = t.address.name
      const config = env.config.upstreams.get(name)
      if (config === undefined) throw env.error(`unknown upstream "${name}"`)
      const tls = env.config.upstreamTls.get(name)
      // A reload keeps the pool (its connections, failure and health state) when the upstream's
      // definition and its TLS files' contents are as they were.
      return env.carry(`proxy:upstream:${t.scheme}:${name}`, { config, tls }, () =>
        new UpstreamPool(name, config, { scheme: t.scheme, ...(config.connectTimeout !== undefined ? { connectTimeout: config.connectTimeout } : {}), ...(tls === undefined ? {} : { tls }) }, { metrics: env.metrics }))
    }
    // A proxy() with its own tls keeps its own pools: its connections are not another's.
    const key = `${t.scheme}://${t.peer}|${options.connectTimeout ?? ''}${tlsKey}`
    let pool = direct.get(key)
    if (pool === undefined) {
      if (t.address.type === 'tcp' && isIP(t.address.host) === 0) env.hostResolves(t.address.host)
      // A direct URL is resolved once, as nginx resolves a static proxy_pass host at load. A
      // reload keeps the pool when the URL, connectTimeout and TLS files are as they were (one
      // with its own tls is its location's, by key path).
      const carried = `proxy:direct:${t.scheme}://${t.peer}|${options.connectTimeout ?? ''}${directTls === undefined ? '' : `|tls ${env.keyPath}`}`
      pool = env.carry(carried, { tls: directTls }, () =>
        new UpstreamPool(t.peer, { servers: [t.peer], resolveInterval: 0 }, { scheme: t.scheme, ...(options.connectTimeout !== undefined ? { connectTimeout: options.connectTimeout } : {}), ...(directTls === undefined ? {} : { tls: directTls }) }, { metrics: env.metrics }))
      direct.set(key, pool)
    }
    return pool
  }
  const target = parsed.kind === 'static' ? parsed : undefined
  const pool = target === undefined ? undefined : poolFor(target)
  const balance = pool?.config.balance
  const hashKey = typeof balance === 'object' ? env.template(balance.hash, '.balance.hash') : undefined

  let redirect: RedirectRewriter | null
  try {
    redirect = compileRedirect(options.redirect, {
      target: parsed,
      location,
      compile: (src, names) => compileTemplate(src, { namedCaptures: new Set([...env.scope.namedCaptures, ...names]) })
    })
  } catch (err) { throw env.error((err as Error).message, '.redirect') }

  const next = options.nextUpstream === false ? { on: [] as NextUpstreamCase[] } : (options.nextUpstream ?? {})
  const on = new Set<NextUpstreamCase>(next.on ?? ['error', 'timeout'])
  const nextStatuses = new Set<number>()
  for (const c of on) if (c.startsWith('http_')) nextStatuses.add(Number(c.slice(5)))

  const size = (v: Size | undefined, dflt: number, key: string): number => {
    const n = v === undefined ? dflt : parseSize(v)
    if (n === undefined) throw env.error(`invalid size ${JSON.stringify(v)} (a number of bytes, or like '64k', '1m', '1g')`, `.${key}`)
    return n
  }
  const spool: SpoolLimits = {
    memory: size(options.buffers, 64 * 1024, 'buffers'),
    file: size(options.maxTempFileSize, 1024 * 1024 * 1024, 'maxTempFileSize'),
    dir: env.config.tempPath
  }

  const ignored = new Set<string>()
  for (const [i, name] of (options.ignoreHeaders ?? []).entries()) {
    const known = IGNORABLE_HEADERS.find((h) => typeof name === 'string' && h.toLowerCase() === name.toLowerCase())
    if (known === undefined) throw env.error(`unknown header ${JSON.stringify(name)}: nginx's proxy_ignore_headers takes ${IGNORABLE_HEADERS.join(', ')}`, `.ignoreHeaders[${i}]`)
    ignored.add(known)
  }

  return {
    upstreamNames,
    target,
    targetTemplate: parsed.kind === 'template' ? env.template(raw) : undefined,
    pool,
    poolFor,
    mapping,
    hashKey,
    requestHeaders: compileRequestHeaders(options, env),
    responseHeaders: compileResponseHeaders(options),
    redirect,
    addHeaders: env.location !== undefined ? env.location.addHeaders : env.server.addHeaders,
    readTimeout: options.readTimeout ?? 60_000,
    sendTimeout: options.sendTimeout ?? 60_000,
    next: on,
    nextStatuses,
    tries: next.tries ?? 0,
    tryTimeout: next.timeout ?? 0,
    interceptErrors: options.interceptErrors ?? false,
    requestBuffering: options.requestBuffering ?? true,
    tempPath: env.config.tempPath,
    bodyRejections: { clientMaxBodySize: limitRejection(env.metrics, 'clientMaxBodySize'), clientBodyTimeout: limitRejection(env.metrics, 'clientBodyTimeout') },
    buffering: options.buffering ?? true,
    spool,
    accelRedirect: !ignored.has('X-Accel-Redirect'),
    accelBuffering: !ignored.has('X-Accel-Buffering'),
    cache: compileCache(options.cache, env, ignored),
    hooks: { upstreamRequest: [], upstreamResponse: [], upstreamError: [] }
  }
}
