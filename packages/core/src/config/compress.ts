/**
 * Response compression, as nginx's gzip module (and ngx_brotli's `brotli`): the `compress` key,
 * its defaults, the shape check and how a level inherits it (its own, else the enclosing one's).
 */
import { z } from 'zod'
import type { CompressConfig } from './types.js'

/** A coding proxyctl compresses with. */
export type Coding = 'br' | 'gzip'

/** nginx's gzip_proxied keywords (`'no_last_modified'` written as nginx does). */
export type ProxiedRule = 'expired' | 'no-cache' | 'no-store' | 'private' | 'no_last_modified' | 'no_etag' | 'auth' | 'any'

/** `compress` in force at a level, every default applied; undefined on the level: off. */
export interface ResolvedCompress {
  /** The codings offered, in order of preference (a tie in the client's q-values goes to the first). */
  readonly encodings: readonly Coding[]
  /** Lower-case MIME types compressed (text/html always); '*' any. */
  readonly types: ReadonlySet<string>
  /** gzip_min_length: an answer whose Content-Length is below this is sent as is. */
  readonly minLength: number
  /** gzip_comp_level (1-9); brotli's quality too. */
  readonly level: number
  /** gzip_proxied: for a request that came through a proxy (has Via); empty: never (off). */
  readonly proxied: ReadonlySet<ProxiedRule>
  /** gzip_vary: `Vary: Accept-Encoding` on every answer that could be compressed. */
  readonly vary: boolean
}

/** nginx's defaults: `gzip on` and nothing else. */
export const COMPRESS_DEFAULTS: ResolvedCompress = {
  encodings: ['gzip'],
  types: new Set(['text/html']),
  minLength: 20,
  level: 1,
  proxied: new Set(),
  vary: false
}

const proxiedRule = z.enum(['expired', 'no-cache', 'no-store', 'private', 'no_last_modified', 'no_etag', 'auth', 'any'])

/** The shape of `compress` (top level, server, location). */
export const compressKeys = {
  compress: z.union([z.boolean(), z.strictObject({
    encodings: z.array(z.enum(['br', 'gzip'])).min(1).optional(),
    types: z.array(z.string().regex(/^(\*|[^\s/]+\/[^\s/]+)$/, { error: 'MIME types ("text/css") or "*"' })).optional(),
    minLength: z.number().int().min(0).optional(),
    level: z.number().int().min(1).max(9).optional(),
    proxied: z.union([z.boolean(), z.array(proxiedRule)]).optional(),
    vary: z.boolean().optional()
  })], { error: 'expected true, false or { encodings?, types?, minLength?, level?, proxied?, vary? }' }).optional()
}

/**
 * A level's `compress` over the enclosing one's: absent inherits, false turns it off, true is
 * nginx's defaults, an object is those defaults with its keys (it replaces the enclosing object
 * whole, so a location says all it means).
 */
export function resolveCompress (own: CompressConfig | boolean | undefined, outer: ResolvedCompress | undefined): ResolvedCompress | undefined {
  if (own === undefined) return outer
  if (own === false) return undefined
  if (own === true) return COMPRESS_DEFAULTS
  const proxied = own.proxied === undefined || own.proxied === false ? [] : own.proxied === true ? ['any' as const] : own.proxied
  return {
    encodings: own.encodings === undefined ? COMPRESS_DEFAULTS.encodings : [...new Set(own.encodings)],
    // nginx's gzip_types: text/html is always in it.
    types: new Set(['text/html', ...(own.types ?? []).map((t) => t.toLowerCase())]),
    minLength: own.minLength ?? COMPRESS_DEFAULTS.minLength,
    level: own.level ?? COMPRESS_DEFAULTS.level,
    proxied: new Set(proxied),
    vary: own.vary ?? COMPRESS_DEFAULTS.vary
  }
}
