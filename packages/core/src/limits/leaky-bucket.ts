/**
 * nginx's limit_req arithmetic (ngx_http_limit_req_module.c), for one location's list of limits:
 * excess in thousandths of a request, the rate in thousandths of a request per second, a key's
 * excess drained by the time since its last request (`rate × ms / 1000`), one request added
 * (1000); over `burst` is refused, over `delay` waits `(excess - delay) × 1000 / rate` ms.
 * Limits before the last are looked at first without being charged, so a refusal by a later one
 * charges nothing; a new key's first request costs nothing (its excess starts at 0), as nginx's.
 *
 * The same steps run in Lua inside Redis (redis-store.ts), on Redis's clock.
 */
import { RecencyMap } from '../util/recency-map.js'

/** One key's state: its excess (1/1000 requests) and when it was last charged (ms). */
export interface Bucket { excess: number, last: number }

/** A key's bucket in one zone: read, created, touched as most recently used. */
export interface BucketTable {
  /** The bucket of `key`, touched as most recently used; undefined if absent. */
  get (key: string): Bucket | undefined
  /** A new bucket for `key`, evicting the least recently used one when the table is full. */
  create (key: string, bucket: Bucket): void
}

/** One limit of a location: its zone's table and rate, and the limit's burst and delay (all ×1000). */
export interface BucketLimit { table: BucketTable, key: string, rate: number, burst: number, delay: number }

/** What the limits decide for one request: pass now, wait `delay` ms, or refuse. `index`: the limit that decided (its excess). */
export type BucketVerdict =
  | { kind: 'pass' }
  | { kind: 'delay', delay: number, excess: number, index: number }
  | { kind: 'busy', excess: number, index: number }

function drained (b: Bucket, rate: number, now: number): { excess: number, ms: number } {
  let ms = now - b.last
  if (ms < -60000) ms = 1
  else if (ms < 0) ms = 0
  const excess = b.excess - Math.floor(rate * ms / 1000) + 1000
  return { excess: excess < 0 ? 0 : excess, ms }
}

const PASS: BucketVerdict = { kind: 'pass' }

/** checkBuckets for a location with one limit, without a list: what most configs have. */
export function checkBucket (table: BucketTable, key: string, rate: number, burst: number, delay: number, now: number): BucketVerdict {
  const b = table.get(key)
  if (b === undefined) { table.create(key, { excess: 0, last: now }); return PASS }
  const d = drained(b, rate, now)
  if (d.excess > burst) return { kind: 'busy', excess: d.excess, index: 0 }
  b.excess = d.excess
  if (d.ms !== 0) b.last = now
  const wait = d.excess <= delay ? 0 : Math.floor((d.excess - delay) * 1000 / rate)
  return wait === 0 ? PASS : { kind: 'delay', delay: wait, excess: d.excess, index: 0 }
}

/** nginx's limit_req handler for `limits` (keys already rendered, empty ones left out), at `now` ms. */
export function checkBuckets (limits: readonly BucketLimit[], now: number): BucketVerdict {
  const n = limits.length
  if (n === 1) { const l = limits[0] as BucketLimit; return checkBucket(l.table, l.key, l.rate, l.burst, l.delay, now) }
  const touched: Array<Bucket | undefined> = new Array(n)
  let excess = 0
  for (let i = 0; i < n; i++) {
    const l = limits[i] as BucketLimit
    const account = i === n - 1
    const b = l.table.get(l.key)
    if (b === undefined) {
      // A new key: nothing to pay yet (and for a limit before the last, drained in full when charged).
      const fresh: Bucket = { excess: 0, last: account ? now : 0 }
      l.table.create(l.key, fresh)
      touched[i] = fresh
      excess = 0
      continue
    }
    const d = drained(b, l.rate, now)
    if (d.excess > l.burst) return { kind: 'busy', excess: d.excess, index: i }
    if (account) {
      b.excess = d.excess
      if (d.ms !== 0) b.last = now
      excess = d.excess
    }
    touched[i] = b
  }
  // nginx's ngx_http_limit_req_account: the last limit's delay, then the others charged now.
  const last = limits[n - 1] as BucketLimit
  let maxDelay = excess <= last.delay ? 0 : Math.floor((excess - last.delay) * 1000 / last.rate)
  let which = n - 1
  for (let i = n - 2; i >= 0; i--) {
    const l = limits[i] as BucketLimit
    const b = touched[i] as Bucket
    const d = drained(b, l.rate, now)
    if (d.ms !== 0) b.last = now
    b.excess = d.excess
    if (d.excess <= l.delay) continue
    const delay = Math.floor((d.excess - l.delay) * 1000 / l.rate)
    if (delay > maxDelay) { maxDelay = delay; excess = d.excess; which = i }
  }
  return maxDelay === 0 ? PASS : { kind: 'delay', delay: maxDelay, excess, index: which }
}

/**
 * A zone's buckets in this process: at most `max` keys, the least recently used evicted first
 * (nginx's zone being full).
 */
export class MemoryBuckets implements BucketTable {
  private readonly map = new RecencyMap<Bucket>()
  constructor (readonly max: number) {}

  get (key: string): Bucket | undefined { return this.map.get(key) }

  create (key: string, bucket: Bucket): void {
    if (this.map.size >= this.max) {
      const oldest = this.map.oldest()
      if (oldest !== undefined) this.map.delete(oldest)
    }
    this.map.set(key, bucket)
  }

  get size (): number { return this.map.size }
}

/** A limit_conn zone's counts in this process: at most `max` keys counted at once (a new one beyond: refused, as nginx's full zone). */
export class MemoryCounts {
  private readonly map = new Map<string, number>()
  constructor (readonly max: number) {}

  /** Counts one more for `key` unless it has `limit` already (false) or the zone is full (undefined). */
  acquire (key: string, limit: number): boolean | undefined {
    const n = this.map.get(key)
    if (n === undefined) {
      if (this.map.size >= this.max) return undefined
      this.map.set(key, 1)
      return true
    }
    if (n >= limit) return false
    this.map.set(key, n + 1)
    return true
  }

  release (key: string): void {
    const n = this.map.get(key)
    if (n === undefined) return
    if (n <= 1) this.map.delete(key)
    else this.map.set(key, n - 1)
  }

  count (key: string): number { return this.map.get(key) ?? 0 }
  get size (): number { return this.map.size }
}
