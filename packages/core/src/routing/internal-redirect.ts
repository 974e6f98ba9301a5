import type { FastifyReply, FastifyRequest } from 'fastify'
import { errorPageBody } from '../http/error-page.js'
import { selectLocation, selectNamedLocation } from './router.js'
import { normalizeUri } from './uri.js'

/** nginx gives up after 10 internal redirects with a 500 ("rewrite or internal redirection cycle"). */
export const MAX_INTERNAL_REDIRECTS = 10

/**
 * Sends the request through location selection again, as nginx's internal redirect: to a URI
 * (`/index.php?x=1`; without `?` the original query is kept) or to a named location (`@app`).
 * The new location's whole plugin chain runs; the current reply is given up.
 */
export function internalRedirect (request: FastifyRequest, reply: FastifyReply, target: string): void {
  const ctx = request.proxyctl
  if (++ctx.internalRedirects > MAX_INTERNAL_REDIRECTS) {
    request.log.error({ target, uri: ctx.uri }, `rewrite or internal redirection cycle while internally redirecting to "${target}"`)
    void reply.code(500).type('text/html').send(errorPageBody(500))
    return
  }
  let routeUrl: string
  if (target.startsWith('@')) {
    const loc = ctx.server.named.get(target)
    if (loc === undefined) {
      request.log.error({ target }, `named location "${target}" not found`)
      void reply.code(500).type('text/html').send(errorPageBody(500))
      return
    }
    routeUrl = selectNamedLocation(ctx, loc)
  } else {
    const q = target.indexOf('?')
    try {
      ctx.uri = normalizeUri(q === -1 ? target : target.slice(0, q))
    } catch {
      request.log.error({ target }, `invalid internal redirect target "${target}"`)
      void reply.code(500).type('text/html').send(errorPageBody(500))
      return
    }
    if (q !== -1) {
      ctx.args = target.slice(q + 1)
      ctx.argMap = undefined
    }
    ctx.uriChanged = true
    routeUrl = selectLocation(ctx)
  }
  reply.hijack()
  request.raw.url = routeUrl
  ctx.dispatch(request.raw, reply.raw)
}
