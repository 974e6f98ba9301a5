/**
 * The headers an upstream's X-Accel-Redirect carries onto the request's final answer, whatever
 * location gives it. nginx (ngx_http_upstream_process_headers) copies the upstream headers whose
 * entry in its headers_in table has the `redirect` flag into the answer's headers before the
 * internal redirect: exactly Content-Type, Set-Cookie, Content-Disposition, Cache-Control,
 * Expires and Accept-Ranges (1.22's table). proxy_hide_header does not apply to them. A chain of
 * redirects keeps adding them (nginx pushes them again each time).
 *
 * How they meet the final answer's own headers is nginx's too (checked side by side,
 * test/proxy/fixtures/x-accel-nginx-compare.ts):
 *  - a file or a respond() body (`content`): the carried Content-Type replaces the answer's
 *    (nginx's ngx_http_set_content_type keeps a type already set); the others are added;
 *  - a proxied answer (`proxied`): the new upstream's Content-Type, if it sends one, replaces
 *    the carried one; the others are added beside its own;
 *  - one of proxyctl's own pages (`page`: 404, 500, 502...): text/html, and the last carried
 *    Accept-Ranges goes (nginx's special response clears the one it points at); the others stay.
 */
import type { FastifyReply } from 'fastify'

/** Names (lower case) nginx carries over an X-Accel-Redirect. */
export const CARRIED_BY_ACCEL_REDIRECT: ReadonlySet<string> = new Set(['content-type', 'set-cookie', 'content-disposition', 'cache-control', 'expires', 'accept-ranges'])

/** Name (as the upstream wrote it), value. */
export type CarriedHeaders = ReadonlyArray<readonly [name: string, value: string]>

export type CarriedInto = 'content' | 'proxied' | 'page'

/**
 * The carried headers, merged as `into` says, onto a head held as a flat list (name, value, ...):
 * each header that stays as [name, value]. Content-Type is the one header that may replace.
 */
function merged (carried: CarriedHeaders, into: CarriedInto, hasType: boolean): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = []
  let lastRanges = -1
  for (const h of carried) {
    const lower = h[0].toLowerCase()
    if (lower === 'content-type') {
      if (into === 'content' || (into === 'proxied' && !hasType)) {
        // The last one carried wins (nginx overwrites its one content_type).
        const i = out.findIndex((o) => o[0].toLowerCase() === 'content-type')
        if (i !== -1) out.splice(i, 1)
        out.push(h)
      }
      continue
    }
    if (lower === 'accept-ranges') lastRanges = out.length
    out.push(h)
  }
  if (into === 'page' && lastRanges !== -1) out.splice(lastRanges, 1)
  return out
}

/**
 * Onto a flat name/value list (a proxied head, changed in place), before the answer's own: nginx
 * copied them first, so a header both have goes out as the carried one, then the answer's.
 */
export function carryOntoList (carried: CarriedHeaders, into: CarriedInto, headers: string[]): void {
  let hasType = false
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === 'content-type') { hasType = true; break }
  headers.unshift(...merged(carried, into, hasType).flat())
}

/** Onto a Fastify reply about to be sent; `page`: one of proxyctl's own error pages. */
export function carryOntoReply (carried: CarriedHeaders, page: boolean, reply: FastifyReply): void {
  for (const [name, value] of merged(carried, page ? 'page' : 'content', false)) {
    const lower = name.toLowerCase()
    // Fastify adds a Set-Cookie after those already set, and replaces any other header: the
    // carried one goes first, as nginx copied it first.
    const prev = lower === 'content-type' || lower === 'set-cookie' ? undefined : reply.getHeader(lower)
    reply.header(lower, prev === undefined ? value : [value, ...(Array.isArray(prev) ? prev.map(String) : [String(prev)])])
  }
}

/** Onto the header object of a page written on the raw response (sendErrorPage sets its own type). */
export function carryOntoObject (carried: CarriedHeaders | undefined, headers: Record<string, string | string[]> | undefined): Record<string, string | string[]> | undefined {
  if (carried === undefined) return headers
  const out: Record<string, string | string[]> = { ...headers }
  for (const [name, value] of merged(carried, 'page', false)) {
    const lower = name.toLowerCase()
    const prev = out[lower]
    out[lower] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value]
  }
  return out
}
