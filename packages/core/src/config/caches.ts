/**
 * nginx's proxy_cache_path (top level): named caches, each with its store (this process's memory,
 * a folder on disk, or a Redis shared by several proxyctl instances), its size bound and how long
 * an entry not asked for is kept. Locations use one by name: `proxy(url, { cache: { zone } })`.
 */
import path from 'node:path'
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import { parseSize } from './limits.js'
import type { CacheZoneConfig, ProxyConfig, Size } from './types.js'

/** A cache zone as its store needs it. Sizes in bytes, times in ms. */
export interface ResolvedCacheZone {
  readonly name: string
  readonly store: { readonly kind: 'memory' } | { readonly kind: 'disk', readonly path: string } | { readonly kind: 'redis', readonly url: string }
  /** proxy_cache_path max_size: the least recently used entries go beyond it. */
  readonly maxSize: number
  /** proxy_cache_path inactive: an entry not asked for this long is removed, fresh or not. */
  readonly inactive: number
  /** The largest entry kept (a larger answer passes through uncached): an eighth of maxSize, at most maxSize. */
  readonly maxEntrySize: number
}

/** Memory must be bounded: nginx has no default max_size, proxyctl keeps 64m in memory unless told. */
export const CACHE_DEFAULTS = { memoryMaxSize: 64 * 1024 * 1024, diskMaxSize: 1024 * 1024 * 1024, redisMaxSize: 256 * 1024 * 1024, inactive: 10 * 60_000 }

const size = z.union([z.number(), z.string()]).refine((v) => (parseSize(v as Size) ?? 0) >= 1024,
  { error: "expected a size of at least 1k: '256m'" })
const store = z.union([
  z.literal('memory'),
  z.strictObject({ path: z.string().min(1) }),
  z.strictObject({ redis: z.string().regex(/^(redis:\/\/|rediss:\/\/|unix:\/)/, { error: "expected 'redis://HOST:PORT[/DB]', 'rediss://...' or 'unix:/path/to/redis.sock'" }) })
], { error: "expected 'memory', { path: './cache' } or { redis: 'redis://HOST:PORT' }" })

/** The top level's `caches` key. */
export const cacheZoneKeys = {
  caches: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, { error: 'cache names use letters, digits, "_" and "-"' }), z.strictObject({
    store: store.optional(),
    maxSize: size.optional(),
    inactive: z.number().int().min(1000).optional(),
    maxEntrySize: size.optional()
  })).optional()
}

export function resolveCacheZones (config: ProxyConfig, baseDir: string, errors: ConfigError[]): ReadonlyMap<string, ResolvedCacheZone> {
  const zones = new Map<string, ResolvedCacheZone>()
  const folders = new Map<string, string>()
  for (const [name, z] of Object.entries(config.caches ?? {}) as Array<[string, CacheZoneConfig]>) {
    const s = z.store ?? 'memory'
    const resolvedStore: ResolvedCacheZone['store'] = s === 'memory'
      ? { kind: 'memory' }
      : 'path' in s ? { kind: 'disk', path: path.resolve(baseDir, s.path) } : { kind: 'redis', url: s.redis }
    if (resolvedStore.kind === 'disk') {
      // Two zones in one folder would evict each other's files as their own.
      const other = folders.get(resolvedStore.path)
      if (other !== undefined) errors.push(new ConfigError(`caches.${name}.store.path`, `the folder is cache "${other}"'s already`))
      folders.set(resolvedStore.path, name)
    }
    const dflt = resolvedStore.kind === 'memory' ? CACHE_DEFAULTS.memoryMaxSize : resolvedStore.kind === 'disk' ? CACHE_DEFAULTS.diskMaxSize : CACHE_DEFAULTS.redisMaxSize
    const maxSize = z.maxSize === undefined ? dflt : parseSize(z.maxSize) as number
    const maxEntrySize = z.maxEntrySize === undefined ? Math.max(1024, Math.floor(maxSize / 8)) : parseSize(z.maxEntrySize) as number
    if (maxEntrySize > maxSize) errors.push(new ConfigError(`caches.${name}.maxEntrySize`, 'larger than maxSize'))
    zones.set(name, { name, store: resolvedStore, maxSize, inactive: z.inactive ?? CACHE_DEFAULTS.inactive, maxEntrySize })
  }
  return zones
}
