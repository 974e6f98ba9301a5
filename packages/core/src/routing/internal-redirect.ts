import type { FastifyReply, FastifyRequest } from 'fastify'
import { sendErrorPage } from '../http/error-page.js'
import { addHeadersInForce, addHeadersObject } from '../http/response-headers.js'
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
export function internalRedirect (request: FastifyRequest, reply: FastifyReply, target: string): void {
  const ctx = request.proxyctl
  // From here on the raw response is ours (the reply may already be hijacked by a proxy).
  reply.hijack()
  const res = reply.raw
  if (++ctx.internalRedirects > MAX_INTERNAL_REDIRECTS) {
    request.log.error({ code: 'PROXYCTL_INTERNAL_REDIRECT_CYCLE', target, uri: ctx.uri }, `rewrite or internal redirection cycle while internally redirecting to "${target}"`)
    sendErrorPage(res, 500, addHeadersObject(addHeadersInForce(ctx), ctx, 500))
    return
  }
  const to = redirectContext(ctx, target)
  if (typeof to !== 'string') {
    request.log.error({ code: 'PROXYCTL_INTERNAL_REDIRECT_INVALID', target }, to.error)
    sendErrorPage(res, 500, to.named ? addHeadersObject(addHeadersInForce(ctx), ctx, 500) : undefined)
    return
  }
  const routeUrl = to
  request.raw.url = routeUrl
  // Each hop's Fastify request listens on the same response; allow for the hops we permit.
  res.setMaxListeners(Math.max(res.getMaxListeners(), 10 + 4 * ctx.internalRedirects))
  ctx.dispatch(request.raw, res)
}

/**
 * Points `ctx` at an internal redirect's target (a named location, or a URI selected again) and
 * returns the route to dispatch to, or why the target is refused. `trace`: `proxyctl explain`'s.
 */
export function redirectContext (ctx: RequestContext, target: string, trace?: RouteTrace): string | { error: string, named: boolean } {
  if (target.startsWith('@')) {
    const loc = ctx.server.named.get(target)
    if (loc === undefined) return { error: `named location "${target}" not found`, named: true }
    return selectNamedLocation(ctx, loc)
  }
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  // nginx takes the target literally (it is built from the decoded $uri): no second
  // percent-decoding. Dot segments are still resolved, so it cannot climb out of a root.
  if (!path.startsWith('/') || path.includes('\0')) return { error: `invalid internal redirect target "${target}"`, named: false }
  ctx.uri = posix.normalize(path)
  ctx.args = q === -1 ? '' : target.slice(q + 1)
  ctx.argMap = undefined
  ctx.uriChanged = true
  ctx.rewrittenInLocation = false
  return selectLocation(ctx, trace)
}
