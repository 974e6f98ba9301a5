import type { IncomingMessage } from 'node:http'
import type { RequestContext } from '@proxyctl/core'
import type { CachePlan, UseStaleCase } from './options.js'
import type { CacheEntry } from './store.js'
import { validity } from './validity.js'

/** nginx's $upstream_cache_status values. */
export type CacheStatus = 'MISS' | 'BYPASS' | 'EXPIRED' | 'STALE' | 'UPDATING' | 'REVALIDATED' | 'HIT'

/** How the lookup ended: an entry answers (with its status), or the request goes upstream. */
export interface LookupOutcome {
  hit (entry: CacheEntry, status: CacheStatus): void
  miss (): void
  /** proxy_cache_background_update: after a stale answer, refresh the entry without a client (`bg` owns the key's update). */
  background (bg: CacheRequest): void
}

/**
 * One request's dealings with its location's cache (nginx's ngx_http_upstream_cache and
 * ngx_http_file_cache_open): the lookup before the upstream, the entry kept for stale answers and
 * revalidation, whether the upstream's answer may be stored, and the lock it holds while filling.
 */
export class CacheRequest {
  status: CacheStatus = 'MISS'
  readonly key: string
  /** The expired entry (EXPIRED): answers on errors with useStale, and revalidation asks about it. */
  stale: CacheEntry | undefined
  /** The answer may be stored (not after minUses not reached, nor after a lock timed out). */
  private storable = true
  /** This request fills the key: the others wait for it (lock) or answer stale (UPDATING). */
  private owner = false
  private cancelWait: (() => void) | undefined

  constructor (readonly plan: CachePlan, private readonly ctx: RequestContext, private readonly req: IncomingMessage) {
    this.key = plan.key.render(ctx)
  }

  /** The lookup; `out` hears once. */
  lookup (out: LookupOutcome, waited = false): void {
    const plan = this.plan
    if (plan.bypass.some((t) => predicate(t.render(this.ctx)))) { this.status = 'BYPASS'; out.miss(); return }
    const found = plan.zone.store.get(this.key)
    if (found instanceof Promise) found.then((e) => { this.found(e, out, waited) }, () => { this.found(undefined, out, waited) })
    else this.found(found, out, waited)
  }

  private found (entry: CacheEntry | undefined, out: LookupOutcome, waited: boolean): void {
    const plan = this.plan
    const zone = plan.zone
    if (entry !== undefined && !this.varyMatches(entry)) {
      const variant = zone.store.get(this.variantKey(entry.vary))
      if (variant instanceof Promise) { variant.then((v) => { this.foundVariant(v, out, waited) }, () => { this.foundVariant(undefined, out, waited) }); return }
      this.foundVariant(variant, out, waited)
      return
    }
    this.foundVariant(entry, out, waited)
  }

  private foundVariant (entry: CacheEntry | undefined, out: LookupOutcome, waited: boolean): void {
    const plan = this.plan
    const zone = plan.zone
    const now = Date.now()
    if (entry !== undefined && this.varyMatches(entry)) {
      if (now < entry.validUntil) { this.status = 'HIT'; out.hit(entry, 'HIT'); return }
      // Stale: one request refreshes it; the others answer stale meanwhile when allowed (UPDATING),
      // else go upstream too (nginx's ngx_http_file_cache_read).
      const mayServeStale = plan.useStale.has('updating') || now < entry.updatingUntil
      if (zone.claim(this.key)) {
        if (plan.backgroundUpdate && mayServeStale) {
          // The stale entry answers now (STALE); a request of its own refreshes it, holding the key.
          this.status = 'STALE'
          out.hit(entry, 'STALE')
          const bg = new CacheRequest(plan, this.ctx, this.req)
          bg.owner = true
          bg.stale = entry
          bg.status = 'EXPIRED'
          out.background(bg)
          return
        }
        this.owner = true
      } else if (mayServeStale) { this.status = 'UPDATING'; out.hit(entry, 'UPDATING'); return }
      this.stale = entry
      this.status = 'EXPIRED'
      out.miss()
      return
    }
    this.status = 'MISS'
    if (plan.minUses > 1 && zone.used(this.key) < plan.minUses) { this.storable = false; out.miss(); return }
    if (plan.lockTimeout === undefined) { out.miss(); return }
    if (zone.claim(this.key)) { this.owner = true; out.miss(); return }
    if (waited) { this.storable = false; out.miss(); return }
    // Another request fills the key: wait for it, then look again. After the timeout the request
    // goes upstream and its answer is not stored (proxy_cache_lock_timeout).
    const started = Date.now()
    this.cancelWait = zone.wait(this.key, plan.lockTimeout, () => {
      this.cancelWait = undefined
      if (Date.now() - started >= (plan.lockTimeout as number)) { this.storable = false; out.miss(); return }
      this.lookup(out, true)
    })
  }

  /** The request is a purge (proxy_cache_purge). */
  isPurge (): boolean {
    return this.plan.purge.some((t) => predicate(t.render(this.ctx)))
  }

  /** Removes the key's entry, and the variant this request would get; true when there was one. */
  async purge (): Promise<boolean> {
    const store = this.plan.zone.store
    const entry = await store.get(this.key)
    let removed = await store.delete(this.key)
    if (entry !== undefined && entry.vary.length > 0) removed = (await store.delete(this.variantKey(entry.vary))) || removed
    return removed
  }

  /** The client left while waiting for a lock. */
  abandon (): void {
    this.cancelWait?.()
    this.cancelWait = undefined
    this.done()
  }

  /** This request's fill is over (stored, not storable, failed): the waiting requests look again. */
  done (): void {
    if (!this.owner) return
    this.owner = false
    this.plan.zone.release(this.key)
  }

  /** The method the upstream gets: HEAD as GET (proxy_cache_convert_head), so the body can be stored. */
  upstreamMethod (method: string): string {
    return method === 'HEAD' && this.plan.convertHead ? 'GET' : method
  }

  /** The stale entry answers when the upstream failed with `kind` (useStale, or the entry's stale-if-error). */
  staleFor (kind: string): CacheEntry | undefined {
    const e = this.stale
    if (e === undefined || !FAILURES.has(kind)) return undefined
    if (this.plan.useStale.has(kind as UseStaleCase) || (kind === 'noLive' && this.plan.useStale.has('error'))) return e
    // The entry's own stale-if-error (or stale-while-revalidate) allows it for any failure.
    if (Date.now() < e.errorUntil) return e
    return undefined
  }

  /** Conditional headers for the upstream when revalidating the stale entry (proxy_cache_revalidate). */
  revalidationHeaders (): string[] {
    const e = this.stale
    if (e === undefined || !this.plan.revalidate) return []
    const out: string[] = []
    if (e.lastModified !== undefined) out.push('If-Modified-Since', e.lastModified)
    if (e.etag !== undefined) out.push('If-None-Match', e.etag)
    return out
  }

  /**
   * The upstream answered `status` with `headers`: the entry to keep, or undefined (not storable,
   * proxy_no_cache, the headers' rules). The body is added when it has arrived whole.
   */
  entryFor (status: number, reason: string, headers: readonly string[]): Omit<CacheEntry, 'body'> | undefined {
    const plan = this.plan
    // A HEAD sent as HEAD (convertHead false) has no body to keep: a GET must not get its empty one.
    if (!this.storable || this.upstreamMethod(this.req.method ?? 'GET') === 'HEAD') return undefined
    if (plan.noCache.some((t) => predicate(t.render(this.ctx)))) return undefined
    const now = Date.now()
    const v = validity(status, headers, plan.valid, plan.ignore, now)
    if (!v.store) return undefined
    let etag: string | undefined
    let lastModified: string | undefined
    if (status === 200 || status === 206) {
      for (let i = 0; i < headers.length; i += 2) {
        const n = (headers[i] as string).toLowerCase()
        if (n === 'etag') etag = headers[i + 1]
        else if (n === 'last-modified') lastModified = headers[i + 1]
      }
    }
    return {
      status, reason, headers, stored: now, validUntil: v.validUntil, updatingUntil: v.updatingUntil, errorUntil: v.errorUntil,
      vary: v.vary, varyValues: v.vary.map((n) => this.header(n)), etag, lastModified
    }
  }

  /** A 304 to our conditional request: the stale entry is fresh again, for the 304's time or `valid` for its own status. */
  revalidated (headers: readonly string[]): CacheEntry | undefined {
    const e = this.stale
    if (e === undefined) return undefined
    const plan = this.plan
    const now = Date.now()
    const v = validity(e.status, headers, plan.valid, plan.ignore, now)
    const renewed: CacheEntry = v.store
      ? { ...e, validUntil: v.validUntil, updatingUntil: v.updatingUntil, errorUntil: v.errorUntil }
      : { ...e, validUntil: now }
    if (v.store) void Promise.resolve(plan.zone.store.touch(this.storeKey(renewed), renewed)).catch(() => {})
    return renewed
  }

  /** Keeps the whole answer; the lock is released once the store has it. */
  store (entry: CacheEntry): void {
    const store = this.plan.zone.store
    this.plan.zone.forgetUses(this.key)
    const done = (): void => { this.done() }
    const r1 = store.set(this.key, entry)
    // A varying answer also goes under its variant's key, so variants live side by side (nginx's secondary keys).
    const r2 = entry.vary.length > 0 ? store.set(this.storeKey(entry), entry) : undefined
    if (r1 instanceof Promise || r2 instanceof Promise) Promise.all([r1, r2]).then(done, done)
    else done()
  }

  private storeKey (e: Pick<CacheEntry, 'vary'>): string {
    return e.vary.length === 0 ? this.key : this.variantKey(e.vary)
  }

  private variantKey (vary: readonly string[]): string {
    let k = this.key + '\n'
    for (const n of vary) k += n + ':' + this.header(n) + '\n'
    return k
  }

  private varyMatches (e: CacheEntry): boolean {
    for (let i = 0; i < e.vary.length; i++) if (this.header(e.vary[i] as string) !== e.varyValues[i]) return false
    return true
  }

  private header (name: string): string {
    const v = this.req.headers[name]
    return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v
  }
}

/** What counts as the upstream failing (proxy_cache_use_stale's cases but updating; noLive: no server to try). */
const FAILURES = new Set(['error', 'timeout', 'invalid_header', 'noLive', 'http_500', 'http_502', 'http_503', 'http_504', 'http_403', 'http_404', 'http_429'])

/** nginx's ngx_http_test_predicates: a value non-empty and not "0" is true. */
export function predicate (v: string): boolean {
  return v !== '' && v !== '0'
}
