import type { ResolvedContent } from '../config/content.js'

/**
 * nginx's not_modified filter's tests (ngx_http_not_modified_filter_module.c), shared by static
 * files and the proxy cache's answers.
 */

/** nginx's ngx_http_parse_time: seconds, or -1 when the date is not one of HTTP's three forms. */
export function parseHttpTime (value: string): number {
  if (!/^(?:[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT|[A-Za-z]{6,9}, \d{2}-[A-Za-z]{3}-\d{2} \d{2}:\d{2}:\d{2} GMT|[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4})$/.test(value.trim())) return -1
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? -1 : Math.floor(ms / 1000)
}

/** nginx's ngx_http_test_if_modified: true when the file counts as modified (200). */
export function modifiedSince (value: string, mtime: number, mode: ResolvedContent['ifModifiedSince']): boolean {
  if (mode === 'off') return true
  const ims = parseHttpTime(value)
  if (ims === mtime) return false
  return mode === 'exact' || ims < mtime
}

/**
 * nginx's ngx_http_test_if_match: `*`, or the ETag in a comma-separated list; for If-None-Match
 * (`weak`) a `W/` before a tag is ignored, for If-Match the comparison is strong.
 */
export function etagListHas (list: string, etag: string, weak: boolean): boolean {
  if (list === '*') return true
  for (const item of list.split(',')) {
    let t = item.trim()
    if (weak && t.startsWith('W/')) t = t.slice(2)
    if (t === etag) return true
  }
  return false
}

