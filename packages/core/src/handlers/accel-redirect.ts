/**
 * nginx's X-Accel-Redirect: an upstream's answer names where the request goes instead, and the
 * request takes the same internal redirect as error_page and tryFiles (routing/internal-redirect.ts).
 * The proxy calls this once it dropped the upstream's answer (proxy/proxy.ts); what nginx does
 * is ngx_http_upstream_process_headers (1.22), checked side by side in
 * test/proxy/fixtures/x-accel-nginx-compare.ts.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { carryOntoObject, type CarriedHeaders } from '../http/carried-headers.js'
import { sendErrorPage } from '../http/error-page.js'
import { addHeadersInForce, addHeadersObject } from '../http/response-headers.js'
import { internalRedirect, type RedirectUri } from '../routing/internal-redirect.js'
import { hexValue } from '../routing/uri.js'
import { errorPageFor, followErrorPage } from './error-pages.js'

/**
 * Follows an X-Accel-Redirect `value`: `@name` goes to that named location (URI, query and
 * method unchanged); anything else is a URI, taken as nginx's ngx_http_parse_unsafe_uri takes
 * it (split at the first `?`, the path percent-decoded, the query as written; empty, starting
 * with `?`, holding a NUL or a `..` segment: refused with 404 and an error line) and the method
 * becomes GET unless it is HEAD. `carried`: the upstream's headers that go onto the final answer,
 * after those of earlier redirects.
 */
export function followAccelRedirect (request: FastifyRequest, reply: FastifyReply, value: string, carried: CarriedHeaders): void {
  const ctx = request.proxyctl
  ctx.carried = ctx.carried === undefined ? carried : [...ctx.carried, ...carried]
  if (value.startsWith('@')) { internalRedirect(request, reply, value); return }
  const target = unsafeUri(value)
  if (target === undefined) {
    request.log.error({ code: 'PROXYCTL_ACCEL_REDIRECT_UNSAFE', target: value }, `unsafe URI "${value}" was detected in X-Accel-Redirect`)
    const rule = errorPageFor(ctx, 404)
    if (rule !== undefined) { followErrorPage(request, reply, rule, 404); return }
    reply.hijack()
    sendErrorPage(reply.raw, 404, carryOntoObject(ctx.carried, addHeadersObject(addHeadersInForce(ctx), ctx, 404)))
    return
  }
  if (request.raw.method !== 'HEAD') request.raw.method = 'GET'
  internalRedirect(request, reply, target)
}

/** A `..` segment: the whole value, or after a slash, followed by a slash or the end. */
const DOT_DOT = /(^|\/)\.\.(\/|$)/

/**
 * nginx's ngx_http_parse_unsafe_uri: the URI (percent-decoded) and the query (as written), or
 * undefined for an unsafe value. A `%` not followed by two hex digits stays as written. The value
 * comes as latin1 (one character a byte): the URI's bytes are read as UTF-8, as the client's are.
 */
export function unsafeUri (value: string): RedirectUri | undefined {
  if (value === '' || value.startsWith('?')) return undefined
  const q = value.indexOf('?')
  const raw = q === -1 ? value : value.slice(0, q)
  const args = q === -1 ? '' : value.slice(q + 1)
  if (raw.includes('\0') || DOT_DOT.test(raw)) return undefined
  if (/^[\x20-\x24\x26-\x7e]*$/.test(raw)) return { uri: raw, args }
  const bytes = Buffer.from(raw, 'latin1')
  const out = Buffer.allocUnsafe(bytes.length)
  let n = 0
  for (let i = 0; i < bytes.length; i++) {
    const hi = hexValue(bytes[i + 1] ?? 0); const lo = hexValue(bytes[i + 2] ?? 0)
    if (bytes[i] === 0x25 && hi >= 0 && lo >= 0) { out[n++] = hi * 16 + lo; i += 2 } else out[n++] = bytes[i] as number
  }
  const uri = out.toString('utf8', 0, n)
  if (uri.includes('\0') || DOT_DOT.test(uri)) return undefined
  return { uri, args }
}
