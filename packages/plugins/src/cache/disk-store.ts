import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { decodeEntry, encodeEntry, keyHash } from './codec.js'
import type { CacheEntry, CacheStore } from './store.js'

/**
 * A cache in a folder (nginx's proxy_cache_path with levels=1:2): one file per entry, named by
 * the md5 of its key under two levels of folders, surviving restarts. A file is written whole
 * under `tmp/` then renamed into place, so a crash never leaves a torn entry (at worst a temp
 * file, removed at the next start). This process keeps an index (size, last use) in
 * least-recently-used order, loaded from the folder at start (nginx's cache loader), for maxSize
 * and inactive; an entry is read whole on a hit (at most the zone's maxEntrySize).
 */
export class DiskStore implements CacheStore {
  private readonly index = new Map<string, { size: number, used: number }>()
  /** Entries being written: found by get meanwhile (the client may ask again before the rename). */
  private readonly writing = new Map<string, { key: string, entry: CacheEntry }>()
  bytes = 0
  private readonly sweeper: NodeJS.Timeout
  /** Called when a file operation failed (counted and logged by the zone). */
  onError: (err: NodeJS.ErrnoException, file: string) => void = () => {}

  constructor (private readonly dir: string, private readonly maxSize: number, private readonly inactive: number) {
    fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true })
    // Temp files of a process that died while writing: never entries.
    for (const f of fs.readdirSync(path.join(dir, 'tmp'))) fs.rmSync(path.join(dir, 'tmp', f), { force: true })
    this.load()
    this.sweeper = setInterval(() => { this.sweep(Date.now()) }, Math.min(inactive, 60_000))
    this.sweeper.unref()
  }

  get count (): number { return this.index.size }

  private file (hash: string): string {
    return path.join(this.dir, hash.slice(-1), hash.slice(-3, -1), hash)
  }

  /** The entries already in the folder, oldest use first (a file's mtime is its last write). */
  private load (): void {
    const found: Array<{ hash: string, size: number, used: number }> = []
    for (const a of safeList(this.dir)) {
      if (a === 'tmp' || a.length !== 1) continue
      for (const b of safeList(path.join(this.dir, a))) {
        for (const hash of safeList(path.join(this.dir, a, b))) {
          try {
            const st = fs.statSync(path.join(this.dir, a, b, hash))
            found.push({ hash, size: st.size, used: st.mtimeMs })
          } catch {}
        }
      }
    }
    found.sort((x, y) => x.used - y.used)
    for (const f of found) { this.index.set(f.hash, { size: f.size, used: f.used }); this.bytes += f.size }
    this.evict()
  }

  async get (key: string): Promise<CacheEntry | undefined> {
    const hash = keyHash(key)
    const w = this.writing.get(hash)
    if (w !== undefined && w.key === key) return w.entry
    const slot = this.index.get(hash)
    if (slot === undefined) return undefined
    const now = Date.now()
    if (now - slot.used > this.inactive) { this.remove(hash); return undefined }
    let bytes: Buffer
    try { bytes = await fsp.readFile(this.file(hash)) } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.onError(err as NodeJS.ErrnoException, this.file(hash))
      this.forget(hash)
      return undefined
    }
    const entry = decodeEntry(key, bytes)
    if (entry === undefined) { this.remove(hash); return undefined }
    slot.used = now
    this.index.delete(hash)
    this.index.set(hash, slot)
    return entry
  }

  async set (key: string, entry: CacheEntry): Promise<void> {
    const hash = keyHash(key)
    const bytes = encodeEntry(key, entry)
    if (bytes.length > this.maxSize) return
    const target = this.file(hash)
    const tmp = path.join(this.dir, 'tmp', `${hash}.${randomBytes(4).toString('hex')}`)
    const pending = { key, entry }
    this.writing.set(hash, pending)
    try {
      await fsp.writeFile(tmp, bytes)
      await fsp.mkdir(path.dirname(target), { recursive: true })
      await fsp.rename(tmp, target)
    } catch (err) {
      this.onError(err as NodeJS.ErrnoException, tmp)
      await fsp.rm(tmp, { force: true }).catch(() => {})
      return
    } finally {
      if (this.writing.get(hash) === pending) this.writing.delete(hash)
    }
    this.forget(hash)
    this.index.set(hash, { size: bytes.length, used: Date.now() })
    this.bytes += bytes.length
    this.evict()
  }

  async touch (key: string, entry: CacheEntry): Promise<void> {
    await this.set(key, entry)
  }

  async delete (key: string): Promise<boolean> {
    const hash = keyHash(key)
    if (!this.index.has(hash)) return false
    this.remove(hash)
    return true
  }

  private evict (): void {
    for (const [hash] of this.index) {
      if (this.bytes <= this.maxSize) break
      this.remove(hash)
    }
  }

  private sweep (now: number): void {
    for (const [hash, slot] of this.index) {
      if (now - slot.used <= this.inactive) break
      this.remove(hash)
    }
  }

  private forget (hash: string): void {
    const slot = this.index.get(hash)
    if (slot === undefined) return
    this.index.delete(hash)
    this.bytes -= slot.size
  }

  private remove (hash: string): void {
    this.forget(hash)
    fs.rm(this.file(hash), { force: true }, () => {})
  }

  async close (): Promise<void> {
    clearInterval(this.sweeper)
  }
}

function safeList (dir: string): string[] {
  try { return fs.readdirSync(dir) } catch { return [] }
}
