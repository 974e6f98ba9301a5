import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { decodeEntry, encodeEntry, keyHash } from './codec.js'
import type { CacheEntry, CacheStore } from './store.js'

/** A command Redis has not answered by then failed (the request goes on as a MISS). */
const COMMAND_TIMEOUT_MS = 500
/** While Redis is down, how often a request may try it again (the others skip it). */
const RETRY_MS = 1000

/**
 * A cache shared by a fleet of proxyctl processes: each entry one Redis value
 * (`proxyctl:cache:ZONE:MD5`, codec.ts's bytes) kept `inactive` ms after its last use (PEXPIRE on
 * each hit); the zone's size is Redis's own (its maxmemory and eviction policy). Redis being down
 * never takes serving down: a lookup is a MISS, a store is skipped, one warn line per outage
 * (and one when it is back), every failure counted.
 */
export class RedisStore implements CacheStore {
  private client: Redis | undefined
  private log: FastifyBaseLogger | undefined
  private downSince: number | undefined
  private retryAt = 0
  /** What this process stored (Redis's own figures are the truth for the fleet). */
  bytes = 0
  count = 0
  /** Counted by the zone (proxyctl_cache_store_errors_total). */
  onError: () => void = () => {}

  constructor (private readonly url: string, private readonly zone: string, private readonly inactive: number) {}

  /** Connects (at most 2 s waited; serving starts either way, with MISSes until Redis answers). */
  async open (log: FastifyBaseLogger): Promise<void> {
    if (this.client !== undefined) return
    this.log = log
    const { Redis } = await import('ioredis')
    const options = { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: COMMAND_TIMEOUT_MS, lazyConnect: true, retryStrategy: (n: number) => Math.min(n * 100, RETRY_MS) }
    const client = this.url.startsWith('unix:') ? new Redis({ path: this.url.slice(5), ...options }) : new Redis(this.url, options)
    client.on('error', () => { this.down('connection error') })
    client.on('close', () => { this.down('connection closed') })
    client.on('ready', () => { this.upAgain() })
    this.client = client
    const ready = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000)
      client.once('ready', () => { clearTimeout(timer); resolve() })
    })
    client.connect().catch(() => { this.down('connection refused') })
    await ready
    if (client.status !== 'ready') this.down('not reachable at start')
  }

  private redisKey (key: string): string {
    return `proxyctl:cache:${this.zone}:${keyHash(key)}`
  }

  /** The client when Redis may be asked now. */
  private usable (): Redis | undefined {
    const c = this.client
    if (c === undefined || c.status !== 'ready') return undefined
    if (this.downSince === undefined) return c
    const now = Date.now()
    if (now < this.retryAt) return undefined
    this.retryAt = now + RETRY_MS
    return c
  }

  async get (key: string): Promise<CacheEntry | undefined> {
    const c = this.usable()
    if (c === undefined) { this.skipped(); return undefined }
    const k = this.redisKey(key)
    try {
      const bytes = await c.getBuffer(k)
      this.upAgain()
      if (bytes === null) return undefined
      const entry = decodeEntry(key, bytes)
      if (entry !== undefined) c.pexpire(k, this.inactive).catch(() => {})
      return entry
    } catch (err) { this.failed(err); return undefined }
  }

  async set (key: string, entry: CacheEntry): Promise<void> {
    const c = this.usable()
    if (c === undefined) { this.skipped(); return }
    const bytes = encodeEntry(key, entry)
    try {
      await c.set(this.redisKey(key), bytes, 'PX', this.inactive)
      this.bytes += bytes.length
      this.count++
    } catch (err) { this.failed(err) }
  }

  async touch (key: string, entry: CacheEntry): Promise<void> {
    await this.set(key, entry)
  }

  async delete (key: string): Promise<boolean> {
    const c = this.usable()
    if (c === undefined) { this.skipped(); return false }
    try { return (await c.del(this.redisKey(key))) > 0 } catch (err) { this.failed(err); return false }
  }

  private skipped (): void {
    this.onError()
  }

  private failed (err: unknown): void {
    this.onError()
    this.down((err as Error).message)
  }

  private down (reason: string): void {
    this.retryAt = Date.now() + RETRY_MS
    if (this.downSince !== undefined || this.client === undefined) return
    this.downSince = Date.now()
    this.log?.warn({ code: 'PROXYCTL_CACHE_STORE_UNAVAILABLE', zone: this.zone, store: this.url, reason },
      `cache "${this.zone}" on redis ${this.url} unavailable (${reason}): its requests are MISSes until it is back`)
  }

  private upAgain (): void {
    if (this.downSince === undefined) return
    const ms = Date.now() - this.downSince
    this.downSince = undefined
    this.log?.info({ code: 'PROXYCTL_CACHE_STORE_RESTORED', zone: this.zone, store: this.url, downMs: ms },
      `cache "${this.zone}" on redis ${this.url} available again after ${ms} ms`)
  }

  async close (): Promise<void> {
    const c = this.client
    this.client = undefined
    c?.removeAllListeners('close')
    c?.on('error', () => {})
    c?.disconnect()
  }
}
