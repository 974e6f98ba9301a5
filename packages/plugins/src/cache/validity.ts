/**
 * Whether an upstream answer may be stored, and until when it is fresh: nginx's rules and their
 * precedence (ngx_http_upstream.c: process_cache_control, process_expires, process_accel_expires,
 * process_set_cookie, process_vary, then ngx_http_upstream_no_cache and proxy_cache_valid):
 *
 * - `X-Accel-Expires` (seconds, or `@` an absolute time) wins over `Cache-Control` and `Expires`;
 *   `0` stores nothing;
 * - `Cache-Control` `no-cache`, `no-store` or `private` stores nothing; `s-maxage` (before
 *   `max-age`) sets the time, `=0` stores nothing; `stale-while-revalidate` and `stale-if-error` are kept;
 * - `Expires` sets the time when nothing above did; one in the past stores nothing;
 * - `Set-Cookie` stores nothing; `Vary: *` stores nothing;
 * - none of them: `valid` (proxy_cache_valid) by status; no rule for the status: not stored.
 *
 * Unlike RFC 9111 there is no heuristic freshness and the request's Cache-Control is not read:
 * README, "Proxy cache", deliberate differences.
 */

/** proxy_cache_valid compiled: ms by status, and for any other status. */
export interface ValidRules { readonly byStatus: ReadonlyMap<number, number>, readonly any: number | undefined }

export type Validity =
  | { readonly store: false }
  | { readonly store: true, readonly validUntil: number, readonly updatingUntil: number, readonly errorUntil: number, readonly vary: readonly string[] }

const NOT_STORED: Validity = { store: false }

/** `headers`: the upstream's, name, value, ... as strings. `ignore`: proxy_ignore_headers, lower case. `now`: ms. */
export function validity (status: number, headers: readonly string[], valid: ValidRules, ignore: ReadonlySet<string>, now: number): Validity {
  let validSec = 0 // absolute seconds, 0: not set (nginx's r->cache->valid_sec)
  let cacheable = true
  let noCache = false
  let expired = false
  let accelSeen = false
  let updatingSec = 0
  let errorSec = 0
  let vary: string[] = []
  const nowSec = Math.floor(now / 1000)
  for (let i = 0; i < headers.length; i += 2) {
    const name = (headers[i] as string).toLowerCase()
    const value = headers[i + 1] as string
    if (name === 'cache-control' && !ignore.has('cache-control')) {
      const v = value.toLowerCase()
      if (!(validSec !== 0 && accelSeen)) {
        if (v.includes('no-cache') || v.includes('no-store') || v.includes('private')) { noCache = true; continue }
        let at = v.indexOf('s-maxage=')
        let skip = 9
        if (at < 0) { at = v.indexOf('max-age='); skip = 8 }
        if (at >= 0) {
          const n = seconds(v, at + skip)
          if (n === undefined) { cacheable = false; continue }
          if (n === 0) { noCache = true; continue }
          validSec = nowSec + n
          expired = false
        }
      }
      const swr = v.indexOf('stale-while-revalidate=')
      if (swr >= 0) {
        const n = seconds(v, swr + 23)
        if (n === undefined) { cacheable = false; continue }
        updatingSec = n; errorSec = n
      }
      const sie = v.indexOf('stale-if-error=')
      if (sie >= 0) {
        const n = seconds(v, sie + 15)
        if (n === undefined) { cacheable = false; continue }
        errorSec = n
      }
    } else if (name === 'expires' && !ignore.has('expires')) {
      if (validSec !== 0) continue
      const t = Date.parse(value)
      if (Number.isNaN(t) || Math.floor(t / 1000) < nowSec) { expired = true; continue }
      validSec = Math.floor(t / 1000)
    } else if (name === 'x-accel-expires' && !ignore.has('x-accel-expires')) {
      accelSeen = true
      if (value.startsWith('@')) {
        const n = atoi(value.slice(1))
        if (n !== undefined) validSec = n
      } else {
        const n = atoi(value)
        if (n === undefined) continue
        if (n === 0) { cacheable = false; continue }
        validSec = nowSec + n
      }
      noCache = false
      expired = false
    } else if (name === 'set-cookie' && !ignore.has('set-cookie')) {
      cacheable = false
    } else if (name === 'vary' && !ignore.has('vary')) {
      // nginx keeps at most 128 bytes of Vary (NGX_HTTP_CACHE_VARY_LEN); a longer one, or *, is not stored.
      if (value.trim() === '*' || value.length > 128) cacheable = false
      for (const part of value.split(',')) {
        const n = part.trim().toLowerCase()
        if (n !== '') vary.push(n)
      }
    }
  }
  if (!cacheable || noCache || expired) return NOT_STORED
  let until = validSec * 1000
  if (validSec === 0) {
    const ms = valid.byStatus.get(status) ?? valid.any
    if (ms === undefined || ms <= 0) return NOT_STORED
    until = now + ms
  }
  vary = [...new Set(vary)].sort()
  return {
    store: true,
    validUntil: until,
    updatingUntil: updatingSec > 0 ? until + updatingSec * 1000 : 0,
    errorUntil: errorSec > 0 ? until + errorSec * 1000 : 0,
    vary
  }
}

/** The digits at `from` up to `,`, `;`, a space or the end (nginx's loop); undefined on another character. */
function seconds (v: string, from: number): number | undefined {
  let n = 0
  for (let i = from; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c === 44 || c === 59 || c === 32) break
    if (c >= 48 && c <= 57) { n = n * 10 + (c - 48); continue }
    return undefined
  }
  return n
}

/** nginx's ngx_atoi: digits only. */
function atoi (s: string): number | undefined {
  return /^\d+$/.test(s) ? Number(s) : undefined
}

/** proxy_cache_valid from `valid`: `{ '200 302': 600000, 404: 60000, any: 60000 }`, or a number of ms for 200, 301 and 302 (nginx's form without codes). */
export function compileValid (valid: number | Record<string, number> | undefined): ValidRules {
  const byStatus = new Map<number, number>()
  let any: number | undefined
  if (typeof valid === 'number') {
    for (const s of [200, 301, 302]) byStatus.set(s, valid)
  } else if (valid !== undefined) {
    for (const [codes, ms] of Object.entries(valid)) {
      for (const c of codes.trim().split(/\s+/)) {
        if (c === 'any') any = ms
        else byStatus.set(Number(c), ms)
      }
    }
  }
  return { byStatus, any }
}
