import type { FastifyBaseLogger } from 'fastify'

/**
 * The one interface every cache store implements (memory, disk, Redis), and the entry they keep.
 * A store only keeps and finds entries by key; what may be stored and for how long is decided
 * before (validity.ts), and which entry answers a request after (lookup.ts).
 */

/** One stored answer: the upstream's head as it came (the proxy's header rules run again on a HIT), its body, and its times. */
export interface CacheEntry {
  readonly status: number
  /** The upstream's reason phrase. */
  readonly reason: string
  /** The upstream's headers as it sent them: name, value, ... (hidden ones too: they are hidden again on a HIT). */
  readonly headers: readonly string[]
  readonly body: Buffer
  /** Date.now() when stored. */
  readonly stored: number
  /** Fresh until (ms since the epoch); after it the entry is stale. Revalidation moves it. */
  validUntil: number
  /** Stale, it may still answer while another request updates it until this (Cache-Control stale-while-revalidate); 0: no. */
  updatingUntil: number
  /** Stale, it may still answer on an upstream error until this (stale-if-error); 0: no. */
  errorUntil: number
  /** The request headers the answer varies on (lower case; Vary), with the values the storing request had. */
  readonly vary: readonly string[]
  readonly varyValues: readonly string[]
  /** What a conditional request upstream asks with (revalidate): the 200's ETag and Last-Modified. */
  readonly etag: string | undefined
  readonly lastModified: string | undefined
}

/** Bytes an entry is counted for against maxSize: its body, its headers, and a fixed overhead. */
export function entrySize (key: string, e: CacheEntry): number {
  let n = 256 + key.length + e.body.length + e.reason.length
  for (const h of e.headers) n += h.length
  return n
}

/** A store may answer at once (memory) or later (disk, Redis). */
export type MaybePromise<T> = T | Promise<T>

export interface CacheStore {
  /** The entry under `key`, or undefined. A store that fails answers undefined (the request is a MISS), never throws. */
  get (key: string): MaybePromise<CacheEntry | undefined>
  /** Keeps `entry` under `key` (replacing any), evicting the least recently used beyond the zone's size. Never throws. */
  set (key: string, entry: CacheEntry): MaybePromise<void>
  /** Removes the entry; true when there was one. */
  delete (key: string): MaybePromise<boolean>
  /** The entry's new times after a revalidation (304), the body kept. */
  touch (key: string, entry: CacheEntry): MaybePromise<void>
  /** Bytes held now (this process's view). */
  readonly bytes: number
  /** Entries held now (this process's view). */
  readonly count: number
  /** Connects (Redis) before serving; `log` for its outage lines. */
  open? (log: FastifyBaseLogger): Promise<void>
  close (): Promise<void>
}
