import type { ResolvedLocation, ResolvedServer } from '../config/model.js'
import type { CompiledHandler, LocationHandler } from '../config/types.js'
import { respond } from '../handlers/respond.js'
import { locationRoute } from './route-urls.js'

/**
 * nginx's auto_redirect: for each prefix location ending in `/` whose handler asks for it, an
 * exact location for the path without the slash answering 301 to it (query kept), unless one
 * exists. `compile` compiles the added location's handler as the config's others. Returns whether
 * any was added (the server's location tree must then be rebuilt).
 */
export function addAutoRedirects (server: ResolvedServer, nextId: () => number,
  compile: (handler: LocationHandler, location: ResolvedLocation) => CompiledHandler): boolean {
  let added = false
  for (const loc of [...server.all]) {
    if (!(loc.compiled?.autoRedirect === true && (loc.kind === 'prefix' || loc.kind === 'prefix-noregex') && loc.path.endsWith('/') && loc.path.length > 1)) continue
    const siblings = loc.parent?.children ?? server.locations
    const path = loc.path.slice(0, -1)
    if (siblings.some((s) => s.kind === 'exact' && s.path === path)) continue
    const id = nextId()
    const handler = respond({ status: 301, redirect: `${loc.path}$is_args$args` })
    const synthetic: ResolvedLocation = {
      ...loc,
      id,
      key: `= ${path}`,
      keyPath: `${loc.keyPath} (auto redirect)`,
      kind: 'exact',
      path,
      children: [],
      handler,
      compiled: undefined,
      plugins: [],
      rewrites: [],
      routeUrl: locationRoute(id)
    }
    synthetic.compiled = compile(handler, synthetic)
    siblings.push(synthetic)
    server.all.push(synthetic)
    added = true
  }
  return added
}
