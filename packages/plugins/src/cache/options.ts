import type { HandlerCompileEnv, Template } from '@proxyctl/core'
import { compileValid, type ValidRules } from './validity.js'
import { CacheZone, createStore } from './zone.js'

/** nginx's proxy_cache_use_stale cases. */
export type UseStaleCase = 'error' | 'timeout' | 'invalid_header' | 'updating' | 'http_500' | 'http_502' | 'http_503' | 'http_504' | 'http_403' | 'http_404' | 'http_429'

/** A location's proxy cache (nginx's proxy_cache and the proxy_cache_* directives). Times in ms. */
export interface CacheOptions {
  /** proxy_cache: a name from the top level's `caches`. */
  zone: string
  /** proxy_cache_key. Default '$scheme$proxy_host$request_uri'. */
  key?: string
  /**
   * proxy_cache_valid: ms by status, for answers whose headers give no time:
   * `{ '200 302': 600000, 404: 60000, any: 10000 }`; a number is 200, 301 and 302.
   * Default none (only answers with Cache-Control max-age, Expires or X-Accel-Expires are stored).
   */
  valid?: number | Record<string, number>
  /** proxy_cache_methods. Default ['GET', 'HEAD'] (HEAD goes upstream as GET: proxy_cache_convert_head). */
  methods?: Array<'GET' | 'HEAD' | 'POST'>
  /** proxy_cache_min_uses: store an answer once its key was asked for this often. Default 1. */
  minUses?: number
  /** proxy_cache_bypass: templates; any rendering non-empty and not '0' skips the lookup (the answer may still be stored). */
  bypass?: string[]
  /** proxy_no_cache: templates; any rendering non-empty and not '0' stores nothing. */
  noCache?: string[]
  /** proxy_cache_lock (+ proxy_cache_lock_timeout): one upstream request fills a missing key, the others wait for it, at most `timeout` (default 5000). */
  lock?: boolean | { timeout?: number }
  /** proxy_cache_use_stale: when the upstream fails so, answer from a stale entry; 'updating': while another request refreshes it. */
  useStale?: UseStaleCase[]
  /** proxy_cache_background_update: with useStale 'updating' (or the entry's stale-while-revalidate), an expired entry answers at once (STALE) while a request without a client refreshes it. Default false. */
  backgroundUpdate?: boolean
  /** proxy_cache_revalidate: a stale entry with ETag or Last-Modified is asked for with If-None-Match / If-Modified-Since; a 304 renews it (REVALIDATED). */
  revalidate?: boolean
  /** proxy_cache_convert_head. Default true. */
  convertHead?: boolean
  /**
   * NGINX Plus's proxy_cache_purge: templates; when any renders non-empty and not '0' the request
   * removes its key's entry instead of being proxied: 204, or 404 when there was none.
   * `['$purge_method']` with a map of `$request_method` (PURGE: 1), or `['$http_x_purge']`.
   */
  purge?: string[]
}

/** A location's cache, compiled. */
export interface CachePlan {
  readonly zone: CacheZone
  readonly key: Template
  readonly valid: ValidRules
  readonly methods: ReadonlySet<string>
  readonly minUses: number
  readonly bypass: readonly Template[]
  readonly noCache: readonly Template[]
  /** ms a request waits for another filling its key; undefined: no lock. */
  readonly lockTimeout: number | undefined
  readonly useStale: ReadonlySet<UseStaleCase>
  readonly revalidate: boolean
  readonly backgroundUpdate: boolean
  readonly ignore: ReadonlySet<string>
  readonly convertHead: boolean
  readonly purge: readonly Template[]
}

const STALE_CASES = new Set<string>(['error', 'timeout', 'invalid_header', 'updating', 'http_500', 'http_502', 'http_503', 'http_504', 'http_403', 'http_404', 'http_429'])
const KEYS = new Set(['zone', 'key', 'valid', 'methods', 'minUses', 'bypass', 'noCache', 'lock', 'useStale', 'backgroundUpdate', 'revalidate', 'convertHead', 'purge'])

/**
 * Checks and compiles `cache`; errors name `.cache.KEY`. The zone's store is made once for all its
 * locations. `ignored`: the location's ignoreHeaders (nginx's one proxy_ignore_headers), by name.
 */
export function compileCache (o: CacheOptions | undefined, env: HandlerCompileEnv, ignored: ReadonlySet<string>): CachePlan | undefined {
  if (o === undefined) return undefined
  const err = (msg: string, key?: string): Error => env.error(msg, key === undefined ? '.cache' : `.cache.${key}`)
  if (typeof o !== 'object' || o === null) throw err('expected { zone, key?, valid?, ... }')
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw err('unknown key', k)
  if (typeof o.zone !== 'string') throw err('expected the name of a cache from the top level\'s caches', 'zone')
  const config = env.config.caches.get(o.zone)
  if (config === undefined) throw err(`unknown cache "${o.zone}" (caches)`, 'zone')
  const zone = env.shared(`cache:zone:${o.zone}`, () => {
    try { return new CacheZone(config, createStore(config), env.metrics) } catch (e) {
      throw err(`cache "${o.zone}": its folder cannot be used (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'zone')
    }
  })
  const ms = (v: unknown, key: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw err('expected a time in ms (an integer >= 0)', key)
    return v
  }
  if (o.valid !== undefined) {
    if (typeof o.valid === 'number') ms(o.valid, 'valid')
    else if (typeof o.valid !== 'object' || o.valid === null) throw err("expected ms, or { '200 302': ms, 404: ms, any: ms }", 'valid')
    else {
      for (const [codes, v] of Object.entries(o.valid)) {
        if (!/^\s*(any|[1-5]\d\d)(\s+(any|[1-5]\d\d))*\s*$/.test(codes)) throw err('keys are status codes (several separated by spaces) or "any"', `valid["${codes}"]`)
        ms(v, `valid["${codes}"]`)
      }
    }
  }
  const list = (v: unknown, key: string, allowed?: ReadonlySet<string>): string[] => {
    if (v === undefined) return []
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw err('expected a list of strings', key)
    for (const x of v as string[]) if (allowed !== undefined && !allowed.has(x)) throw err(`"${x}" is not one of ${[...allowed].join(', ')}`, key)
    return v as string[]
  }
  const methods = o.methods === undefined ? ['GET', 'HEAD'] : list(o.methods, 'methods', new Set(['GET', 'HEAD', 'POST']))
  // nginx: "GET and HEAD methods are always added to the list".
  const methodSet = new Set([...methods, 'GET', 'HEAD'])
  if (o.minUses !== undefined && (!Number.isInteger(o.minUses) || o.minUses < 1)) throw err('expected an integer >= 1', 'minUses')
  let lockTimeout: number | undefined
  if (o.lock === true) lockTimeout = 5000
  else if (typeof o.lock === 'object' && o.lock !== null) {
    for (const k of Object.keys(o.lock)) if (k !== 'timeout') throw err('unknown key', `lock.${k}`)
    lockTimeout = o.lock.timeout === undefined ? 5000 : ms(o.lock.timeout, 'lock.timeout')
  } else if (o.lock !== undefined && o.lock !== false) throw err('expected true, false or { timeout }', 'lock')
  for (const k of ['revalidate', 'convertHead', 'backgroundUpdate'] as const) if (o[k] !== undefined && typeof o[k] !== 'boolean') throw err('expected true or false', k)
  return {
    zone,
    key: env.template(o.key ?? '$scheme$proxy_host$request_uri', '.cache.key'),
    valid: compileValid(o.valid),
    methods: methodSet,
    minUses: o.minUses ?? 1,
    bypass: list(o.bypass, 'bypass').map((t, i) => env.template(t, `.cache.bypass[${i}]`)),
    noCache: list(o.noCache, 'noCache').map((t, i) => env.template(t, `.cache.noCache[${i}]`)),
    lockTimeout,
    useStale: new Set(list(o.useStale, 'useStale', STALE_CASES)) as Set<UseStaleCase>,
    revalidate: o.revalidate ?? false,
    backgroundUpdate: o.backgroundUpdate ?? false,
    ignore: new Set([...ignored].map((h) => h.toLowerCase())),
    convertHead: o.convertHead ?? true,
    purge: list(o.purge, 'purge').map((t, i) => env.template(t, `.cache.purge[${i}]`))
  }
}
