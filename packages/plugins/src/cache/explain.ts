import type { RequestContext } from '@proxyctl/core'
import type { CachePlan } from './options.js'
import { predicate } from './request.js'

/** `proxyctl explain` for a location's cache: the zone and its store, the key this request gets, and whether it is looked up. */
export function explainCache (plan: CachePlan, ctx: RequestContext): Record<string, unknown> {
  const method = ctx.req.method ?? 'GET'
  const z = plan.zone.config
  const lookup = plan.purge.some((t) => predicate(t.render(ctx)))
    ? 'purge: the entry is removed (204, or 404 when none)'
    : !plan.methods.has(method)
        ? `not cached: ${method} is not in methods`
        : plan.bypass.some((t) => predicate(t.render(ctx))) ? 'bypass: no lookup (BYPASS); the answer may be stored' : 'looked up: a fresh entry answers without the upstream (HIT)'
  return {
    zone: z.name,
    store: z.store.kind === 'memory' ? 'memory' : z.store.kind === 'disk' ? `disk ${z.store.path}` : `redis ${z.store.url}`,
    key: plan.key.render(ctx),
    lookup
  }
}
