import type { CacheRequest } from './request.js'

/**
 * With a cache, the upstream is asked for the whole answer whatever the client's conditions
 * (nginx's ngx_http_proxy_cache_headers): the client's If-* and Range headers are not passed, the
 * cache answers them; a revalidation adds its own If-Modified-Since / If-None-Match.
 */
const NOT_PASSED = new Set(['if-modified-since', 'if-unmodified-since', 'if-none-match', 'if-match', 'range', 'if-range'])

export function cacheRequestHeaders (headers: string[], cache: CacheRequest): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (NOT_PASSED.has((headers[i] as string).toLowerCase())) { headers.splice(i, 2); i -= 2 }
  }
  const extra = cache.revalidationHeaders()
  if (extra.length > 0) headers.push(...extra)
}
