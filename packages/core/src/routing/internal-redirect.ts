import type { FastifyReply, FastifyRequest } from 'fastify'
import { sendErrorPage } from '../http/error-page.js'
import { addHeadersInForce, addHeadersObject } from '../http/response-headers.js'
import { carryOntoObject } from '../http/carried-headers.js'
import { selectLocation, selectNamedLocation, type RouteTrace } from './router.js'
import type { RequestContext } from './request-context.js'
import { posix } from 'node:path'

/** nginx gives up after 10 internal redirects with a 500 ("rewrite or internal redirection cycle"). */
export const MAX_INTERNAL_REDIRECTS = 10

/**
 * Sends the request through location selection again, as nginx's internal redirect: to a URI
 * (`/index.php?x=1`: the query becomes the target's, empty without `?`, as nginx's
 * ngx_http_internal_redirect; write `/x?$args` to keep the client's) or to a named location
 * (`@app`: URI and query unchanged).
 * The new location's whole plugin chain runs; the current reply is given up.
 */
export function internalRedirect (request: FastifyRequest, reply: FastifyReply, target: string | RedirectUri): void {
  const ctx = request.proxyctl
  // From here on the raw response is ours (the reply may already be hijacked by a proxy).
  reply.hijack()
  const res = reply.raw
  const shown = typeof target === 'string' ? target : target.args === '' ? target.uri : `${target.uri}?${target.args}`
  if (++ctx.internalRedirects > MAX_INTERNAL_REDIRECTS) {
    request.log.error({ code: 'PROXYCTL_INTERNAL_REDIRECT_CYCLE', target: shown, uri: ctx.uri }, `rewrite or internal redirection cycle while internally redirecting to "${shown}"`)
    sendErrorPage(res, 500, carryOntoObject(ctx.carried, addHeadersObject(addHeadersInForce(ctx), ctx, 500)))
    return
  }
  const to = redirectContext(ctx, target)
  if (typeof to !== 'string') {
    request.log.error({ code: 'PROXYCTL_INTERNAL_REDIRECT_INVALID', target: shown }, to.error)
    sendErrorPage(res, 500, carryOntoObject(ctx.carried, to.named ? addHeadersObject(addHeadersInForce(ctx), ctx, 500) : undefined))
    return
  }
  const routeUrl = to
  request.raw.url = routeUrl
  // Each hop's Fastify request listens on the same response; allow for the hops we permit.
  res.setMaxListeners(Math.max(res.getMaxListeners(), 10 + 4 * ctx.internalRedirects))
  ctx.dispatch(request.raw, res)
}

/** A target already split into its decoded URI and its query (X-Accel-Redirect's, accel-redirect.ts). */
export interface RedirectUri { uri: string, args: string }

/**
 * Points `ctx` at an internal redirect's target (a named location, or a URI selected again) and
 * returns the route to dispatch to, or why the target is refused. `trace`: `proxyctl explain`'s.
 */
export function redirectContext (ctx: RequestContext, target: string | RedirectUri, trace?: RouteTrace): string | { error: string, named: boolean } {
  if (typeof target === 'string' && target.startsWith('@')) {
    const loc = ctx.server.named.get(target)
    if (loc === undefined) return { error: `named location "${target}" not found`, named: true }
    return selectNamedLocation(ctx, loc)
  }
  const q = typeof target === 'string' ? target.indexOf('?') : -1
  const path = typeof target !== 'string' ? target.uri : q === -1 ? target : target.slice(0, q)
  // nginx takes the target literally (it is built from the decoded $uri): no second
  // percent-decoding. Dot segments are still resolved, so it cannot climb out of a root.
  if (!path.startsWith('/') || path.includes('\0')) return { error: `invalid internal redirect target "${typeof target === 'string' ? target : target.uri}"`, named: false }
  ctx.uri = posix.normalize(path)
  ctx.args = typeof target !== 'string' ? target.args : q === -1 ? '' : target.slice(q + 1)
  ctx.argMap = undefined
  ctx.uriChanged = true
  ctx.rewrittenInLocation = false
  return selectLocation(ctx, trace)
}
