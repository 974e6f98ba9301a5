import type { HandlerExplanation, RequestContext, Template } from '@proxyctl/core'
import { requestHead } from '../upstream/h1/connection.js'
import { upstreamPath, type ProxyPlan } from './plan.js'
import { explainCache } from '../cache/explain.js'
import { noteProxyHost } from './exchange.js'
import { wirePath } from './proxy.js'
import { parseRenderedTarget, type ParsedProxyTarget } from './target.js'

/**
 * `proxyctl explain` for proxy() and websocket(): the target, the balancer's servers and its
 * first pick, and the request head that would go upstream, built by the code that builds it when
 * serving (the plan's URI mapping and header builder, the h1 client's head writer). The plugins'
 * upstreamRequest hooks, which run after this, are not run.
 */
export function explainProxy (plan: ProxyPlan, ctx: RequestContext, kind: 'proxy' | 'websocket', upgrade: boolean): HandlerExplanation {
  let target: ParsedProxyTarget
  let renderedUri: string | undefined
  let rendered: string | undefined
  if (plan.target !== undefined) target = plan.target
  else {
    rendered = (plan.targetTemplate as Template).render(ctx)
    try { target = parseRenderedTarget(rendered, plan.upstreamNames) } catch (err) {
      return { kind, target: (plan.targetTemplate as Template).source, rendered, error: `${(err as Error).message}: the request gets 500` }
    }
    renderedUri = target.uriPart
  }
  const pool = plan.pool ?? plan.poolFor(target)
  noteProxyHost(ctx, target.proxyHost)
  const req = ctx.req
  const path = upstreamPath(plan, ctx, renderedUri)
  const headers = plan.requestHeaders.build(ctx, req, target.proxyHost)
  const length = req.headers['content-length']
  const chunked = req.headers['transfer-encoding'] !== undefined
  const bodyLength = length !== undefined && length !== '0' ? Number(length) : undefined
  // The head writer reads only the body's length: a stand-in of that length, never the bytes (a client may announce gigabytes).
  const head = requestHead({ method: req.method ?? 'GET', path: wirePath(path), headers, ...(bodyLength !== undefined ? { body: [{ length: bodyLength } as Buffer] } : {}) }, target.proxyHost)
  let lines = typeof head === 'string' ? head.split('\r\n').filter((l) => l !== '') : [`(refused by the upstream client: ${head.message}: the request gets 502)`]
  if (upgrade) lines = lines.flatMap((l) => l === 'connection: keep-alive' ? ['connection: upgrade', `upgrade: ${req.headers.upgrade ?? 'websocket'}`] : [l])
  if (chunked && !upgrade) {
    lines.push(plan.requestBuffering ? 'content-length: (the chunked body\'s length, once buffered)' : 'transfer-encoding: chunked (requestBuffering false: the body streams as it comes)')
  }

  const balance = pool.config.balance ?? 'round-robin'
  const preview = pool.preview({ key: plan.hashKey?.render(ctx), clientAddress: ctx.socket.remoteAddress, tried: new Set(), request: ctx })
  return {
    kind,
    target: plan.target?.raw ?? (plan.targetTemplate as Template).source,
    ...(rendered !== undefined ? { rendered } : {}),
    upstream: target.address.type === 'upstream' ? target.address.name : target.peer,
    balancer: typeof balance === 'function' ? 'custom' : typeof balance === 'object' ? `hash ${balance.hash}${balance.consistent === true ? ' consistent' : ''}` : balance,
    ...(plan.hashKey !== undefined ? { hashKey: plan.hashKey.render(ctx) } : {}),
    servers: pool.config.servers.map((s) => typeof s === 'string' ? { address: s } : { ...s }),
    firstPick: preview.pick,
    ...(preview.why !== undefined ? { firstPickNote: preview.why } : {}),
    uriRule: uriRule(plan, target, ctx, rendered),
    upstreamRequest: lines,
    ...(plan.cache !== undefined && !upgrade ? { cache: explainCache(plan.cache, ctx) } : {}),
    ...(upgrade ? { tunnel: 'on 101 the two connections are joined byte for byte' } : {})
  }
}

/** Which of nginx's proxy_pass URI rules applies (proxy/uri.ts). */
function uriRule (plan: ProxyPlan, target: ParsedProxyTarget, ctx: RequestContext, rendered: string | undefined): string {
  if (ctx.rewrittenInLocation && target.uriPart !== undefined && rendered === undefined) return 'the location\'s rewrite ... break changed the URI: the whole new $uri, escaped, then ?$args (the URI part is dropped)'
  if (rendered !== undefined && target.uriPart !== undefined) return `the target has variables and a URI part: sent as rendered ("${rendered}"), nothing added`
  if (target.uriPart === undefined) {
    return ctx.uriChanged
      ? 'no URI part in the target, and the URI was changed (rewrite or internal redirect): the normalised $uri, escaped, then ?$args'
      : 'no URI part in the target: the request URI as the client sent it'
  }
  const prefix = ctx.location === undefined ? '/' : ctx.location.path
  return `the target's URI part "${target.uriPart}" replaces the location's prefix "${prefix}" of $uri; the query follows`
}
