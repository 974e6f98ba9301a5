import type { CounterChild, GaugeChild, MetricsRegistry } from '@proxyctl/core'
import type { ResolvedCacheZone } from '@proxyctl/core/internal'
import type { FastifyBaseLogger } from 'fastify'
import { DiskStore } from './disk-store.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore } from './redis-store.js'
import type { CacheStore } from './store.js'

/**
 * One named cache (nginx's keys_zone) as every location using it shares it: its store, and what
 * this process knows beside the entries: how often a key was asked for (minUses), which keys an
 * upstream request is filling now (lock, and UPDATING for the others).
 */
export class CacheZone {
  /** Requests for keys not stored yet (nginx's min_uses count); bounded, the oldest forgotten first. */
  private readonly uses = new Map<string, number>()
  /** Keys being filled by one upstream request: the requests waiting for it (lock). */
  private readonly filling = new Map<string, Array<() => void>>()

  /** proxyctl_cache_requests_total by $upstream_cache_status. */
  private readonly answered = new Map<string, CounterChild>()
  /** proxyctl_cache_store_errors_total: a store that failed (disk, Redis), each time. */
  readonly storeErrors: CounterChild

  constructor (readonly config: ResolvedCacheZone, readonly store: CacheStore, metrics: MetricsRegistry) {
    const name = config.name
    const requests = metrics.counter('proxyctl_cache_requests_total', 'Requests that asked a cache, by zone and $upstream_cache_status (MISS, BYPASS, EXPIRED, STALE, UPDATING, REVALIDATED, HIT).', ['zone', 'status'])
    for (const s of ['MISS', 'BYPASS', 'EXPIRED', 'STALE', 'UPDATING', 'REVALIDATED', 'HIT']) this.answered.set(s, requests.child(name, s))
    this.storeErrors = metrics.counter('proxyctl_cache_store_errors_total', 'Cache store operations that failed (a disk or Redis store; the request went on as a MISS), by zone.', ['zone']).child(name)
    this.bytesGauge = metrics.gauge('proxyctl_cache_size_bytes', 'Bytes a cache zone holds (this process\'s view for Redis: what it stored).', ['zone']).child(name)
    this.entriesGauge = metrics.gauge('proxyctl_cache_entries', 'Entries a cache zone holds (this process\'s view for Redis).', ['zone']).child(name)
    this.metrics = metrics
    if (store instanceof DiskStore) store.onError = (err, file) => { this.fileFailed(err, file) }
    if (store instanceof RedisStore) store.onError = () => { this.storeErrors.inc() }
  }

  private opened: Promise<void> | undefined
  private log: FastifyBaseLogger | undefined
  private readonly metrics: MetricsRegistry
  private readonly bytesGauge: GaugeChild
  private readonly entriesGauge: GaugeChild
  /** Removes the scrape callback: a registry kept across reloads outlives a zone. */
  private stopCollecting: (() => void) | undefined

  /**
   * When an app starts (not at compile: a config only checked leaves nothing in the registry): the
   * store connects (Redis), `log` hears its failures, the size gauges are set at each scrape. Once
   * for all the zone's locations.
   */
  open (log: FastifyBaseLogger): Promise<void> {
    this.log ??= log
    const store = this.store
    this.stopCollecting ??= this.metrics.onCollect(() => { this.bytesGauge.set(store.bytes); this.entriesGauge.set(store.count) })
    return (this.opened ??= this.store.open?.(log) ?? Promise.resolve())
  }

  /** A disk store's file operation failed: one error line, counted; the request went on. */
  fileFailed (err: NodeJS.ErrnoException, file: string): void {
    this.storeErrors.inc()
    this.log?.error({ code: 'PROXYCTL_CACHE_STORE_FAILED', zone: this.config.name, path: file, errno: err.code },
      `cache "${this.config.name}": "${file}" failed (${err.code ?? ''}: ${err.message})`)
  }

  /** One request's final $upstream_cache_status. */
  count (status: string | undefined): void {
    if (status !== undefined) this.answered.get(status)?.inc()
  }

  /** Counts one more request for `key`; the count so far. */
  used (key: string): number {
    const n = (this.uses.get(key) ?? 0) + 1
    this.uses.delete(key)
    this.uses.set(key, n)
    if (this.uses.size > MAX_USES_KEYS) this.uses.delete(this.uses.keys().next().value as string)
    return n
  }

  forgetUses (key: string): void { this.uses.delete(key) }

  /** True when the caller now fills `key` (no one else is); false when another does (see `wait`). */
  claim (key: string): boolean {
    if (this.filling.has(key)) return false
    this.filling.set(key, [])
    return true
  }

  isFilling (key: string): boolean { return this.filling.has(key) }

  /** Calls `fn` once the request filling `key` is done, or after `timeout` ms. The returned function cancels the wait. */
  wait (key: string, timeout: number, fn: () => void): () => void {
    const list = this.filling.get(key)
    if (list === undefined) { queueMicrotask(fn); return () => {} }
    let done = false
    const once = (): void => { if (!done) { done = true; clearTimeout(timer); fn() } }
    const timer = setTimeout(once, timeout)
    list.push(once)
    return () => { done = true; clearTimeout(timer) }
  }

  /** The fill of `key` is over (stored or not): the waiting requests look again. */
  release (key: string): void {
    const list = this.filling.get(key)
    if (list === undefined) return
    this.filling.delete(key)
    for (const fn of list) fn()
  }

  close (): Promise<void> {
    this.stopCollecting?.()
    this.stopCollecting = undefined
    return this.store.close()
  }
}

/** Keys whose uses are counted at once (a request for a key is counted only while it is not stored). */
const MAX_USES_KEYS = 100_000

/** The store for a zone's config (a folder is made now: a config check finds one that cannot be). */
export function createStore (z: ResolvedCacheZone): CacheStore {
  switch (z.store.kind) {
    case 'memory': return new MemoryStore(z.maxSize, z.inactive)
    case 'disk': return new DiskStore(z.store.path, z.maxSize, z.inactive)
    case 'redis': return new RedisStore(z.store.url, z.name, z.inactive)
  }
}
