import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ResolvedListen, ResolvedLocation } from '../config/model.js'
import { BAD_REQUEST_ROUTE, REWRITE_ROUTE } from './route-urls.js'
import { runRewrites, type RewriteStep } from './rewrite.js'
import type { LocationStep } from './types.js'
import { BadRequestError } from '../errors.js'
import { checkRequestHead } from '../http/request-head.js'
import { RequestContext } from './request-context.js'
import { normalizeHost, type ServerStep } from './server-select.js'
import { normalizeUri, splitRequestTarget } from './uri.js'

/** Where the raw request carries its context between our listener and Fastify's hooks. */
export const kRequestContext = Symbol.for('proxyctl.requestContext')
/** Set instead of a context when the request cannot be routed. */
export const kRouteError = Symbol.for('proxyctl.routeError')

export { BAD_REQUEST_ROUTE }

export interface RoutedRequest extends IncomingMessage {
  [kRequestContext]?: RequestContext
  [kRouteError]?: BadRequestError
}

/**
 * What routing did, step by step, for `proxyctl explain`: the server rule, each rewrite rule
 * tried (`where`: the server's, or the location's), each location selection round (`select`,
 * with the URI) and each location considered in it.
 */
export type RouteStep =
  | ({ step: 'server' } & ServerStep)
  | ({ step: 'rewrite', where: 'server' | ResolvedLocation } & RewriteStep)
  | { step: 'select', uri: string }
  | ({ step: 'location' } & LocationStep<ResolvedLocation>)
export type RouteTrace = (step: RouteStep) => void

/**
 * Selects server and location for a request, as nginx does: normalise the URI, pick the server
 * by Host among those on the listen address, then the location. Returns the internal Fastify
 * route to dispatch to; the request carries its RequestContext (or the reason for a 400).
 * `trace` is `proxyctl explain`'s (the server passes none).
 */
export function routeRequest (req: RoutedRequest, listen: ResolvedListen,
  dispatch: (req: IncomingMessage, res: ServerResponse) => void, trace?: RouteTrace): string {
  const refused = checkRequestHead(req, listen.defaultServer.limits)
  if (refused !== undefined) return refuseRequest(req, refused)
  const target = req.url ?? '/'
  const { path, args, host: lineHost } = splitRequestTarget(target)
  let uri: string
  try {
    uri = normalizeUri(path)
  } catch (err) {
    return refuseRequest(req, err instanceof BadRequestError ? err : new BadRequestError(String(err)))
  }
  const hostHeader = lineHost ?? req.headers.host
  const host = normalizeHost(hostHeader)
  if (host === null) {
    return refuseRequest(req, new BadRequestError(`invalid host "${hostHeader}"`))
  }
  if (host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) {
    return refuseRequest(req, new BadRequestError('client sent HTTP/1.1 request without "Host" header'))
  }
  const { server, captures } = listen.selector.select(host ?? '', trace === undefined ? undefined : (step) => trace({ step: 'server', ...step }))
  const ctx = new RequestContext(req, listen, server, lineHost === undefined ? target : originForm(target), uri, args, host ?? '', dispatch)
  if (captures !== null) { ctx.serverCaptures = captures; ctx.captures = captures }
  req[kRequestContext] = ctx
  if (server.rewrites.length > 0) {
    const out = runRewrites(server.rewrites, ctx, trace === undefined ? undefined : (step) => trace({ step: 'rewrite', where: 'server', ...step }))
    if (out.kind === 'redirect') return rewriteAnswer(ctx, out.status, out.location)
  }
  if (server.returnTo !== undefined) return server.returnTo.routeUrl
  return selectLocation(ctx, trace)
}

/** `$request_uri` of an absolute-form target, as nginx: `http://host/x?y` is `/x?y` (kept whole when no path follows the host). */
function originForm (target: string): string {
  const from = target.indexOf('://') + 3
  let i = from
  while (i < target.length && target.charCodeAt(i) !== 0x2f && target.charCodeAt(i) !== 0x3f) i++
  return target.charCodeAt(i) === 0x2f ? target.slice(i) : target
}

/** Sends the request to the 400 route with its reason (and its target, for the log line). */
export function refuseRequest (req: RoutedRequest, error: BadRequestError): string {
  error.target ??= req.url
  req[kRouteError] = error
  return BAD_REQUEST_ROUTE
}

/**
 * Runs location selection for `ctx.uri` on its server; sets location and captures. Then the
 * location's rewrites: `last` or a changed URI selects again (at most MAX_INTERNAL_REDIRECTS times
 * in all, as nginx), `break` stays, a redirect is answered.
 */
export function selectLocation (ctx: RequestContext, trace?: RouteTrace): string {
  for (;;) {
    let match
    if (trace === undefined) match = ctx.server.tree.match(ctx.uri)
    else {
      trace({ step: 'select', uri: ctx.uri })
      match = ctx.server.tree.match(ctx.uri, (step) => trace({ step: 'location', ...step }))
    }
    if (match === null) {
      ctx.location = undefined
      ctx.captures = ctx.serverCaptures
      return ctx.server.fallback.routeUrl
    }
    const loc = match.location
    ctx.location = loc
    ctx.captures = match.captures ?? ctx.serverCaptures
    if (loc.rewrites.length === 0) return loc.routeUrl
    const out = runRewrites(loc.rewrites, ctx, trace === undefined ? undefined : (step) => trace({ step: 'rewrite', where: loc, ...step }))
    if (out.kind === 'redirect') return rewriteAnswer(ctx, out.status, out.location)
    if (out.kind === 'break') { ctx.rewrittenInLocation = true; return loc.routeUrl }
    if (out.kind === 'unchanged') return loc.routeUrl
    if (++ctx.internalRedirects > MAX_URI_CHANGES) return rewriteAnswer(ctx, 500)
  }
}

/** nginx gives up after 10 URI changes (rewrites and internal redirects together). */
const MAX_URI_CHANGES = 10

function rewriteAnswer (ctx: RequestContext, status: number, location?: string): string {
  // No location answers: the core's rewrite route does (and no location's fast path).
  ctx.location = undefined
  ctx.rewriteAnswer = location === undefined ? { status } : { status, location }
  return REWRITE_ROUTE
}

/** Points the context at a named location (captures are kept, as nginx keeps them). */
export function selectNamedLocation (ctx: RequestContext, loc: ResolvedLocation): string {
  ctx.location = loc
  ctx.rewrittenInLocation = false
  return loc.routeUrl
}
