// __NAME__: a proxyctl plugin. A plugin is a Fastify plugin; proxyctl applies it in the scope it
// is listed in (the whole config, one server, or one location and the locations nested in it).
import fp from 'fastify-plugin'
import { addPhaseHook, type FastifyPluginAsync } from 'proxyctl'

/** The plugin's options; in proxy.config.ts: `[__PLUGIN__, { ... } satisfies __OPTIONS__]`. */
export interface __OPTIONS__ {
  /** Request header sent upstream, naming the location that matched (e.g. `/api/`). Default `x-proxyctl-location`. */
  requestHeader?: string
  /** Response header sent to the client: milliseconds from the request's arrival to the upstream's answer. Default `x-upstream-time`. */
  responseHeader?: string
}

// Where the plugin keeps the request's arrival: a slot in `request.proxyctl.locals`, keyed by a
// symbol of its own so no other plugin's slot can clash with it.
const kArrived = Symbol('__NAME__ arrived')

const plugin: FastifyPluginAsync<__OPTIONS__> = async (fastify, options) => {
  const requestHeader = options.requestHeader ?? 'x-proxyctl-location'
  const responseHeader = options.responseHeader ?? 'x-upstream-time'

  // The request phase is Fastify's: `request.proxyctl` is proxyctl's context of the request
  // (uri, args, server, location, captures, locals).
  fastify.addHook('onRequest', async (request) => {
    request.proxyctl.locals[kArrived] = performance.now()
  })

  // Once per attempt, before the request head goes upstream: method, path and headers may change.
  // Phase hooks get the same context and are synchronous.
  addPhaseHook(fastify, 'upstreamRequest', (ctx, head) => {
    head.headers.push(requestHeader, ctx.location?.key ?? '')
  })

  // The upstream's status and headers, before they reach the client.
  addPhaseHook(fastify, 'upstreamResponse', (ctx, head) => {
    const arrived = ctx.locals[kArrived]
    if (typeof arrived === 'number') head.headers.push(responseHeader, (performance.now() - arrived).toFixed(1))
  })
}

// fastify-plugin's metadata: the plugin's name and the Fastify it is written for.
export default fp(plugin, { name: '__NAME__', fastify: '5.x' })
