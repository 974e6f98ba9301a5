import { RecencyMap } from '@proxyctl/core/internal'
import { entrySize, type CacheEntry, type CacheStore } from './store.js'

/**
 * This process's cache (the default): entries in least-recently-used order (RecencyMap), bounded
 * in bytes by the zone's maxSize, the oldest evicted first; an entry not asked for within
 * `inactive` is dropped when next seen or swept.
 */
export class MemoryStore implements CacheStore {
  private readonly map = new RecencyMap<{ entry: CacheEntry, size: number, used: number }>()
  bytes = 0
  private readonly sweeper: NodeJS.Timeout

  constructor (private readonly maxSize: number, private readonly inactive: number) {
    this.sweeper = setInterval(() => { this.sweep(Date.now()) }, Math.min(inactive, 60_000))
    this.sweeper.unref()
  }

  get count (): number { return this.map.size }

  get (key: string): CacheEntry | undefined {
    const slot = this.map.get(key)
    if (slot === undefined) return undefined
    const now = Date.now()
    if (now - slot.used > this.inactive) { this.remove(key, slot.size); return undefined }
    slot.used = now
    return slot.entry
  }

  set (key: string, entry: CacheEntry): void {
    const size = entrySize(key, entry)
    const old = this.map.get(key)
    if (old !== undefined) this.remove(key, old.size)
    if (size > this.maxSize) return
    this.map.set(key, { entry, size, used: Date.now() })
    this.bytes += size
    for (const [k, slot] of this.map.entries()) {
      if (this.bytes <= this.maxSize) break
      this.remove(k, slot.size)
    }
  }

  touch (key: string, entry: CacheEntry): void {
    const slot = this.map.get(key)
    if (slot !== undefined) slot.entry = entry
  }

  delete (key: string): boolean {
    const slot = this.map.get(key)
    if (slot === undefined) return false
    this.remove(key, slot.size)
    return true
  }

  private remove (key: string, size: number): void {
    this.map.delete(key)
    this.bytes -= size
  }

  /** Drops what was not asked for within `inactive` (every entry: the order is only nearly by use). */
  private sweep (now: number): void {
    for (const [k, slot] of this.map.entries()) if (now - slot.used > this.inactive) this.remove(k, slot.size)
  }

  async close (): Promise<void> {
    clearInterval(this.sweeper)
    this.map.clear()
    this.bytes = 0
  }
}
