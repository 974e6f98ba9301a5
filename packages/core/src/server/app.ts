import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import Fastify, { LogController, type onRequestHookHandler, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync, type FastifyPluginCallback } from 'fastify'
import type { ResolvedConfig, ResolvedLocation, ResolvedServer } from '../config/model.js'
import type { AnyFastifyPlugin, PluginEntry } from '../config/types.js'
import { accessAllowed, type AccessRule } from '../config/access.js'
import type { ResolvedRateLimits } from '../config/rate-limits.js'
import { runLimits } from '../limits/phase.js'
import { RequestBodyError } from '../errors.js'
import { errorPageBody, isOwnPage, nginxReason, statusReason, wireStatus } from '../http/error-page.js'
import { carryOntoReply } from '../http/carried-headers.js'
import { openPhaseScope } from '../phases/phases.js'
import { errorPageFor, followErrorPage, sendStatus } from '../handlers/error-pages.js'
import type { RequestContext } from '../routing/request-context.js'
import { failRequest, requestLine } from './guard.js'
import type { AccessLogs } from '../log/access-logs.js'
import { recordOf } from '../log/exchange-record.js'
import { coreFamilies, installMeters } from '../metrics/proxy-metrics.js'
import { BAD_REQUEST_ROUTE, kRequestContext, kRouteError, type RoutedRequest } from '../routing/router.js'
import { REWRITE_ROUTE } from '../routing/route-urls.js'
import { absoluteLocation } from '../handlers/respond.js'
import { asHeaderValue } from '../http/header-value.js'
import { compressReply } from '../http/compress.js'
import { addHeadersInForce, addHeadersObject, addToReply } from '../http/response-headers.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The proxyctl context of this request: server, location, `$uri`, captures, ... */
    proxyctl: RequestContext
  }
}

const NO_ACCESS_LOGS: AccessLogs = { active: false, sinks: new Map(), close () {} }

/** Every method node's parser accepts, so a proxy forwards WebDAV and friends too. */
const ALL_METHODS = http.METHODS.filter((m) => m !== 'CONNECT')

export interface ProxyApp {
  readonly fastify: FastifyInstance
  readonly config: ResolvedConfig
  /** The handler our listeners call after routing; Fastify's router. */
  readonly dispatch: (req: IncomingMessage, res: ServerResponse) => void
  /** Where finished requests are logged (access-logs.ts); inactive when no level logs. */
  readonly accessLogs: AccessLogs
}

/**
 * Assembles the Fastify app: one encapsulated context per server, one per location (nested
 * locations inside their parent's), each location's plugins then its handler registered inside.
 *
 *   root ── global plugins
 *     └─ server[i] ── server plugins, fallback route
 *          └─ location ── location plugins, handler plugin, route /__proxyctl/L<id>
 *               └─ nested location ...
 *
 * Plugins given in the config are applied in their scope without a new context of their own
 * (as `fastify-plugin` would), so their hooks and decorators reach every location below.
 */
export interface BuildOptions {
  /** A pino logger instance, pino options such as `{ level }`, or false. Default false. */
  logger?: FastifyBaseLogger | { level: string } | boolean
  /** The access logs, opened (start.ts); default: none. */
  accessLogs?: AccessLogs
}

export async function buildApp (config: ResolvedConfig, options: BuildOptions = {}): Promise<ProxyApp> {
  let dispatch: ProxyApp['dispatch'] = () => { throw new Error('app not ready') }
  const logger = options.logger ?? false
  const fastify = Fastify({
    ...(typeof logger === 'object' && 'child' in logger ? { loggerInstance: logger as FastifyBaseLogger } : { logger }),
    // Fastify's two lines per request would double the access log the log phase writes.
    logController: new LogController({ disableRequestLogging: true }),
    // We route before Fastify does; its router only sees our internal URLs.
    serverFactory: (handler) => {
      dispatch = handler
      return http.createServer()
    },
    return503OnClosing: false,
    requestIdHeader: false,
    bodyLimit: Number.MAX_SAFE_INTEGER
  })
  for (const m of ALL_METHODS) if (!fastify.supportedMethods.includes(m)) fastify.addHttpMethod(m, { hasBody: true })

  // Bodies are never parsed by core: handlers stream `request.raw` themselves.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', (_req, _payload, done) => { done(null) })

  fastify.decorateRequest('proxyctl', null as unknown as RequestContext)
  fastify.addHook('onRequest', (request, _reply, done) => {
    const raw = request.raw as unknown as RoutedRequest
    const ctx = raw[kRequestContext]
    if (ctx !== undefined) {
      request.proxyctl = ctx
      // Show plugins the client's URL, not our internal route.
      raw.url = ctx.requestUri
    }
    done()
  })

  // A handler or hook that throws an error without a status is a bug: guard.ts logs it (code,
  // client, request line; Fastify itself logs nothing with request logging off) and answers 500.
  // Errors that carry a status (a plugin's 401, 429, 503) keep Fastify's default answer.
  fastify.setErrorHandler((error, request, reply) => {
    if ((error as { statusCode?: number }).statusCode !== undefined) return reply.send(error)
    reply.hijack()
    const ctx = request.proxyctl
    failRequest(request.log, request.raw, reply.raw, ctx?.requestUri ?? request.raw.url, error,
      ctx === null ? undefined : addHeadersObject(addHeadersInForce(ctx), ctx, 500))
    return undefined
  })

  // error_page `=CODE` or the original status, on whatever the redirected location answers;
  // then addHeaders (add_header) of the location answering, on that final status, and nginx's
  // reason phrase for it.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const ctx = request.proxyctl
    if (ctx !== null) {
      const override = ctx.statusOverride
      if (override !== undefined) {
        reply.code(override)
        // The redirected location's phrase is for its own status: nginx's for the rule's ("413 Request Entity Too Large").
        reply.raw.statusMessage = statusReason(override)
      }
      // What an upstream's X-Accel-Redirect carried, under add_header (nginx copies them first).
      if (ctx.carried !== undefined) carryOntoReply(ctx.carried, isOwnPage(payload), reply)
      const add = addHeadersInForce(ctx)
      if (add !== undefined) addToReply(add, ctx, reply)
    }
    // nginx's wording on the status line, whoever set the status.
    const reason = nginxReason(reply.statusCode)
    if (reason !== undefined) reply.raw.statusMessage = reason
    // After add_header, as nginx's filter order; the proxy compresses its own answers (downstream.ts).
    const compress = ctx === null ? undefined : (ctx.location ?? ctx.server).compress
    done(null, compress === undefined ? payload : compressReply(compress, request, reply, payload))
  })

  if (config.metrics.on) installMeters(config)
  const rejections = config.metrics.on ? coreFamilies(config.metrics.registry).limitRejections : undefined
  fastify.route({
    method: ALL_METHODS,
    url: BAD_REQUEST_ROUTE,
    handler (request, reply) {
      const raw = request.raw as unknown as RoutedRequest
      const err = raw[kRouteError]
      const line = requestLine(raw, err?.target)
      const limit = err instanceof RequestBodyError ? err.limitFields() : err?.limit === undefined ? {} : { limit: err.limit }
      request.log.info({ code: err?.code ?? 'PROXYCTL_BAD_REQUEST', client: raw.socket?.remoteAddress, request: line, reason: err?.message, ...limit },
        `${err?.message ?? 'bad request'}, client: ${raw.socket?.remoteAddress ?? '-'}, request: "${line}"`)
      const status = err?.status ?? 400
      if (rejections !== undefined && err?.limit !== undefined) rejections.child(err.limit, '').inc()
      // nginx logs its own status (494) where the wire says 400.
      const record = recordOf(reply.raw)
      if (record !== undefined && wireStatus(status) !== status) record.loggedStatus = status
      // A routed request (a body refused at the front door) takes error_page as other statuses do.
      const rule = request.proxyctl === null ? undefined : errorPageFor(request.proxyctl, status)
      if (rule !== undefined) {
        reply.raw.setHeader('connection', 'close')
        followErrorPage(request, reply, rule, status)
        return reply
      }
      const wire = wireStatus(status)
      // nginx's reason phrase on the status line ("405 Not Allowed"), as on its page.
      reply.raw.statusMessage = statusReason(wire)
      return reply.code(wire).header('connection', 'close').type('text/html').send(errorPageBody(status))
    }
  })

  // A rewrite's redirect (301/302 to an absolute URL, as respond()'s), or 500 after too many URI changes.
  fastify.route({
    method: ALL_METHODS,
    url: REWRITE_ROUTE,
    handler (request, reply) {
      const ctx = request.proxyctl
      const answer = ctx.rewriteAnswer ?? { status: 500 }
      if (answer.location === undefined) {
        request.log.error({ code: 'PROXYCTL_INTERNAL_REDIRECT_CYCLE', uri: ctx.uri, request: requestLine(request.raw, ctx.requestUri) }, `rewrite or internal redirection cycle while processing "${ctx.uri}"`)
        sendStatus(request, reply, answer.status)
        return reply
      }
      return reply.code(answer.status).header('location', asHeaderValue(absoluteLocation(answer.location, ctx))).type('text/html').send(errorPageBody(answer.status))
    }
  })

  await fastify.register(async function proxyctl (root) {
    openPhaseScope(root)
    for (const entry of config.plugins) await applyInPlace(root, entry)
    for (const server of config.servers) await root.register(serverScope(server, config.plugins.length))
  })
  await fastify.ready()
  return { fastify, config, dispatch: (req, res) => dispatch(req, res), accessLogs: options.accessLogs ?? NO_ACCESS_LOGS }
}

function serverScope (server: ResolvedServer, globalPlugins: number): FastifyPluginAsync {
  const scope: FastifyPluginAsync = async (s) => {
    openPhaseScope(s)
    for (const entry of server.plugins) await applyInPlace(s, entry)
    const ret = server.returnTo
    if (ret?.compiled !== undefined) {
      if (ret.compiled.plugin) await ret.compiled.plugin(s)
      s.route({ method: ALL_METHODS, url: ret.routeUrl, handler: ret.compiled.handle })
    }
    const fallback = server.fallback.compiled
    if (fallback !== undefined) {
      if (fallback.plugin) await fallback.plugin(s)
      const onRequest = [...(server.rateLimits.active ? [limitCheck(server.rateLimits)] : []), ...(server.access.length > 0 ? [accessCheck(server.access)] : [])]
      s.route({ method: ALL_METHODS, url: server.fallback.routeUrl, handler: fallback.handle, ...(onRequest.length > 0 ? { onRequest } : {}) })
    }
    for (const loc of server.locations) await s.register(locationScope(loc, globalPlugins))
    for (const loc of server.named.values()) await s.register(locationScope(loc, globalPlugins))
  }
  Object.defineProperty(scope, 'name', { value: `server[${server.position}]` })
  return scope
}

/**
 * True when no plugin can observe a request of `loc`: none configured globally, on its server, or
 * on it and the locations enclosing it, and no error pages in force. Such a location may skip
 * the Fastify chain (CompiledHandler.direct).
 */
function nothingHooksIn (loc: ResolvedLocation, globalPlugins: number): boolean {
  if (loc.errorPages !== undefined || loc.access.length > 0 || loc.server.plugins.length > 0 || globalPlugins > 0) return false
  for (let l: ResolvedLocation | undefined = loc; l !== undefined; l = l.parent) if (l.plugins.length > 0) return false
  return true
}

function locationScope (loc: ResolvedLocation, globalPlugins: number): FastifyPluginAsync {
  const scope: FastifyPluginAsync = async (l) => {
    openPhaseScope(l)
    if (loc.rateLimits.active) l.addHook('onRequest', limitCheck(loc.rateLimits))
    if (loc.access.length > 0) l.addHook('onRequest', accessCheck(loc.access))
    for (const entry of loc.plugins) await applyInPlace(l, entry)
    const compiled = loc.compiled
    if (compiled !== undefined) {
      if (compiled.plugin) await compiled.plugin(l)
      l.route({ method: ALL_METHODS, url: loc.routeUrl, handler: compiled.handle })
      const direct = compiled.direct
      if (direct !== undefined && nothingHooksIn(loc, globalPlugins)) {
        const log = l.log
        const limits = loc.rateLimits
        // Limits run before the fast path too; a refusal is answered by the location's route.
        loc.fastPath = limits.active
          ? (ctx, req, res) => {
              runLimits(ctx, res, limits, log, (refusal) => {
                if (refusal === undefined) { direct(ctx, req, res, log); return }
                ctx.limitRefusal = refusal
                req.url = loc.routeUrl
                ctx.dispatch(req, res)
              })
            }
          : (ctx, req, res) => direct(ctx, req, res, log)
      }
    } else {
      // A location with no handler answers 404 until a static handler is the default.
      l.route({ method: ALL_METHODS, url: loc.routeUrl, handler: (req, reply) => { sendStatus(req, reply, 404) } })
    }
    for (const child of loc.children) await l.register(locationScope(child, globalPlugins))
  }
  Object.defineProperty(scope, 'name', { value: `location ${loc.key}` })
  return scope
}

/** nginx's preaccess phase (limit_req, limit_conn): before allow/deny, the location's plugins and its handler. */
function limitCheck (limits: ResolvedRateLimits): onRequestHookHandler {
  return function (request, reply, done) {
    const ctx = request.proxyctl
    const refused = ctx.limitRefusal
    if (refused !== undefined) { ctx.limitRefusal = undefined; sendStatus(request, reply, refused); return }
    runLimits(ctx, reply.raw, limits, request.log, (refusal) => {
      if (refusal === undefined) done()
      else sendStatus(request, reply, refusal)
    })
  }
}

/** nginx's access phase: before the location's plugins and handler, after every internal redirect too. */
function accessCheck (rules: readonly AccessRule[]): onRequestHookHandler {
  return function (request, reply, done) {
    const client = request.raw.socket.remoteAddress
    if (accessAllowed(rules, client)) { done(); return }
    const line = requestLine(request.raw, request.proxyctl?.requestUri)
    request.log.error({ code: 'PROXYCTL_ACCESS_DENIED', client: client ?? 'unix:', request: line }, `access forbidden by rule, client: ${client ?? 'unix:'}, request: "${line}"`)
    sendStatus(request, reply, 403)
  }
}

const kSkipOverride = Symbol.for('skip-override')
const kPluginMeta = Symbol.for('plugin-meta')
const kDisplayName = Symbol.for('fastify.display-name')

/** Registers a user's plugin so it runs in `scope` itself, not in a context of its own. */
async function applyInPlace (scope: FastifyInstance, entry: PluginEntry): Promise<void> {
  let plugin: AnyFastifyPlugin
  let opts: Record<string, unknown> = {}
  if (Array.isArray(entry)) { plugin = entry[0]; opts = entry[1] ?? {} } else if (typeof entry === 'object' && 'plugin' in entry) {
    plugin = entry.plugin; opts = entry.options ?? {}
  } else plugin = entry
  const fn = (typeof plugin === 'function' ? plugin : plugin.default) as FastifyPluginCallback | FastifyPluginAsync
  // A wrapper of the same arity (callback or promise style), marked like fastify-plugin marks.
  const wrapper = fn.length >= 3
    ? function (i: FastifyInstance, o: Record<string, unknown>, done: (err?: Error) => void) { (fn as FastifyPluginCallback)(i, o, done) }
    : async function (i: FastifyInstance, o: Record<string, unknown>) { await (fn as FastifyPluginAsync)(i, o) }
  Object.defineProperty(wrapper, 'name', { value: fn.name || 'anonymous plugin' })
  // fastify-plugin's metadata (name, the Fastify versions it supports, the plugins it needs) stays
  // on the wrapper, so Fastify checks it as it would on the plugin itself.
  for (const key of [kPluginMeta, kDisplayName]) {
    const value = (fn as unknown as Record<symbol, unknown>)[key]
    if (value !== undefined) (wrapper as unknown as Record<symbol, unknown>)[key] = value
  }
  ;(wrapper as unknown as Record<symbol, boolean>)[kSkipOverride] = true
  await scope.register(wrapper as FastifyPluginCallback, opts)
}
