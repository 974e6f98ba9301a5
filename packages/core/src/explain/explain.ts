/**
 * `proxyctl explain`: what proxyctl would do with one request, told from the real routing code
 * (router.ts with its trace: server-select.ts, location-tree.ts, rewrite.ts) on a request built
 * the way Node's HTTP server builds one, and from the handler's own `explain` (the proxy's header
 * builder and URI mapping, try_files' checks...). Nothing listens and nothing is connected to.
 */
import { IncomingMessage } from 'node:http'
import { isIP, Socket } from 'node:net'
import type { ResolvedConfig, ResolvedListen, ResolvedLocation, ResolvedServer } from '../config/model.js'
import type { HandlerExplanation, PluginEntry } from '../config/types.js'
import { accessAllowed } from '../config/access.js'
import { parseListenAddress } from '../config/listen.js'
import { ExplainInputError, type BadRequestError } from '../errors.js'
import { BAD_REQUEST_ROUTE, REWRITE_ROUTE } from '../routing/route-urls.js'
import { kRequestContext, kRouteError, routeRequest, type RouteStep, type RoutedRequest } from '../routing/router.js'
import type { RequestContext } from '../routing/request-context.js'
import { compileTemplate } from '../variables/compile.js'
import { MAX_INTERNAL_REDIRECTS, redirectContext } from '../routing/internal-redirect.js'

export interface ExplainInput {
  /** Default GET. */
  method?: string
  /** `http://host[:port]/path?query` (or https); the path and query are sent as written. */
  url: string
  /** Request headers as the client would send them; a Host here replaces the URL's. */
  headers?: Array<[name: string, value: string]>
  /** The listen address the request arrives on (a key as `proxyctl check` prints it, or as written in the config); default: found from the URL. */
  listen?: string
  /** The client's address (`$remote_addr`, allow/deny, ip-hash). Default 127.0.0.1. */
  client?: string
}

/** One step of routing, as `--json` prints it. */
export type ExplainStep =
  | { step: 'rewrite', where: string, rule: string, keyPath: string, matched: boolean, uri: string, args: string }
  | { step: 'select', uri: string }
  | { step: 'location', test: 'exact' | 'prefix' | 'regex' | 'regexes-skipped', location: string, keyPath: string, matched: boolean }

/** `proxyctl explain --json`: a stable shape (README, "explain"). */
export interface Explanation {
  request: { method: string, url: string, target: string, headers: Array<[string, string]>, client: string }
  listen: { address: string, why: string }
  server: { keyPath: string, names: string[], host: string, rule: string, name: string | null }
  steps: ExplainStep[]
  /** The location chosen in the end (after rewrites), outermost first in `chain`; null when none. */
  location: { key: string, keyPath: string, chain: string[] } | null
  /**
   * Who answers: `location`, `fallback` (no location matched: the server's handler), `return`
   * (the server's return), `rewrite` (a rewrite's redirect or a cycle's 500), `bad-request`
   * (refused before any location), `access-denied` (allow/deny: 403), `internal` (an internal
   * location asked for by a client: 404), `body-too-large` (a Content-Length above clientMaxBodySize: 413).
   */
  outcome: 'location' | 'fallback' | 'return' | 'rewrite' | 'bad-request' | 'access-denied' | 'body-too-large' | 'internal'
  /** For outcomes answered by proxyctl itself: the status, and a redirect's Location or the reason. */
  answer: { status: number, location?: string, reason?: string } | null
  variables: Record<string, string>
  plugins: Array<{ name: string, scope: string }>
  /** A handler that answers with an internal redirect (`internalRedirect` in its explanation): each hop, followed as the server would. */
  redirects: Array<{ to: string, steps: ExplainStep[], variables: Record<string, string> } & Pick<Explanation, 'location' | 'outcome' | 'answer' | 'plugins' | 'handler'>>
  handler: ({ description: string, keyPath: string } & HandlerExplanation) | null
}

export async function explainRequest (config: ResolvedConfig, input: ExplainInput): Promise<Explanation> {
  const method = input.method ?? 'GET'
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(method)) throw new ExplainInputError(`invalid method "${method}"`)
  const url = parseUrl(input.url)
  const headers: Array<[string, string]> = []
  for (const [name, value] of input.headers ?? []) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new ExplainInputError(`invalid header name "${name}"`)
    if (/[\0\r\n]/.test(value)) throw new ExplainInputError(`invalid value for header "${name}"`)
    headers.push([name, value])
  }
  if (!headers.some(([n]) => n.toLowerCase() === 'host')) headers.unshift(['Host', url.authority])
  const client = input.client ?? '127.0.0.1'
  if (isIP(client) === 0) throw new ExplainInputError(`invalid client address "${client}"`)
  const { listen, why } = pickListen(config, url, input.listen)

  const req = fakeRequest(method, url.target, headers, listen, client)
  const steps: ExplainStep[] = []
  let serverStep: { rule: string, name?: string } = { rule: 'default' }
  const trace = tracer(steps)
  const route = routeRequest(req, listen, () => {}, (step: RouteStep) => { if (step.step === 'server') serverStep = step; else trace(step) })

  const ctx = req[kRequestContext]
  const refused = req[kRouteError]
  const server = ctx?.server ?? listen.defaultServer
  const out: Explanation = {
    request: { method, url: input.url, target: url.target, headers, client },
    listen: { address: listen.key, why },
    server: {
      keyPath: server.keyPath,
      names: server.names.map((n) => typeof n === 'string' ? n : `~${n.source}`),
      host: ctx?.host ?? '',
      rule: ctx === undefined ? 'none (refused before server selection)' : serverStep.rule,
      name: serverStep.name ?? null
    },
    steps,
    location: null,
    outcome: 'location',
    answer: null,
    variables: {},
    plugins: [],
    handler: null,
    redirects: []
  }
  if (route === BAD_REQUEST_ROUTE || ctx === undefined) {
    const err = refused as BadRequestError
    out.outcome = 'bad-request'
    out.answer = { status: err.status, reason: err.message }
    return out
  }
  out.variables = variables(ctx)
  Object.assign(out, await answerOf(config, ctx, route, client))
  // Internal redirects a handler would make (try_files' fallback, an index file), followed as the server would.
  let next = typeof out.handler?.internalRedirect === 'string' ? out.handler.internalRedirect : undefined
  for (const redirects: Explanation['redirects'] = []; next !== undefined; next = typeof redirects[redirects.length - 1]?.handler?.internalRedirect === 'string' ? redirects[redirects.length - 1]?.handler?.internalRedirect as string : undefined) {
    out.redirects = redirects
    const hopSteps: ExplainStep[] = []
    if (++ctx.internalRedirects > MAX_INTERNAL_REDIRECTS) {
      redirects.push({ to: next, steps: hopSteps, location: null, outcome: 'rewrite', answer: { status: 500, reason: 'rewrite or internal redirection cycle' }, variables: {}, plugins: [], handler: null })
      break
    }
    const to = redirectContext(ctx, next, tracer(hopSteps))
    if (typeof to !== 'string') {
      redirects.push({ to: next, steps: hopSteps, location: null, outcome: 'rewrite', answer: { status: 500, reason: to.error }, variables: {}, plugins: [], handler: null })
      break
    }
    redirects.push({ to: next, steps: hopSteps, ...await answerOf(config, ctx, to, client), variables: variables(ctx) })
  }
  return out
}

type Answer = Pick<Explanation, 'location' | 'outcome' | 'answer' | 'plugins' | 'handler'>

/** Who answers once routing chose `route` for `ctx`, and what its handler would do. */
async function answerOf (config: ResolvedConfig, ctx: RequestContext, route: string, client: string): Promise<Answer> {
  const server = ctx.server
  const out: Answer = { location: null, outcome: 'location', answer: null, plugins: [], handler: null }
  if (route === REWRITE_ROUTE) {
    const a = ctx.rewriteAnswer ?? { status: 500 }
    out.outcome = 'rewrite'
    out.answer = a.location === undefined ? { status: a.status, reason: 'rewrite or internal redirection cycle' } : { status: a.status, location: a.location }
    return out
  }
  const loc = ctx.location
  let handled: { compiled: ResolvedLocation['compiled'], description: string, keyPath: string } | undefined
  if (server.returnTo !== undefined && route === server.returnTo.routeUrl) {
    out.outcome = 'return'
    handled = { compiled: server.returnTo.compiled, description: server.returnTo.handler.description, keyPath: `${server.keyPath}.return` }
  } else if (loc === undefined) {
    out.outcome = 'fallback'
    handled = { compiled: server.fallback.compiled, description: server.fallback.handler.description, keyPath: `${server.keyPath}.handler` }
  } else {
    out.location = { key: loc.key, keyPath: loc.keyPath, chain: chainOf(loc).map((l) => l.key) }
    if (loc.handler !== undefined) handled = { compiled: loc.compiled, description: loc.handler.description, keyPath: loc.keyPath }
  }
  out.plugins = pluginsInScope(config, server, loc)
  const rules = loc?.access ?? server.access
  if (rules.length > 0 && !accessAllowed(rules, client)) {
    out.outcome = 'access-denied'
    out.answer = { status: 403, reason: `access forbidden by rule, client: ${client}` }
    return out
  }
  // request-body-limit.ts answers this at the front door, before any handler.
  const max = (loc?.limits ?? server.limits).clientMaxBodySize
  const length = Number(ctx.req.headers['content-length'] ?? 0)
  if (max > 0 && length > max) {
    out.outcome = 'body-too-large'
    out.answer = { status: 413, reason: `Content-Length ${length} is above clientMaxBodySize ${max}` }
    return out
  }
  if (loc?.internal === true && ctx.internalRedirects === 0) {
    out.outcome = 'internal'
    out.answer = { status: 404, reason: 'an internal location, reached only by internal redirects' }
    return out
  }
  if (handled === undefined) {
    out.answer = { status: 404, reason: 'the location has no handler' }
    return out
  }
  const explained = await handled.compiled?.explain?.(ctx)
  out.handler = { description: handled.description, keyPath: handled.keyPath, ...(explained ?? { kind: 'custom' }) }
  return out
}

function tracer (steps: ExplainStep[]): (step: RouteStep) => void {
  return (step) => {
    switch (step.step) {
      case 'select': steps.push({ step: 'select', uri: step.uri }); break
      case 'rewrite':
        steps.push({
          step: 'rewrite', where: step.where === 'server' ? 'server' : step.where.keyPath, rule: step.rule.source ?? step.rule.regex.source,
          keyPath: step.rule.keyPath ?? '', matched: step.matched, uri: step.uri, args: step.args
        })
        break
      case 'location':
        steps.push({ step: 'location', test: step.kind, location: step.node.key, keyPath: step.node.keyPath, matched: step.matched })
        break
    }
  }
}

interface ParsedUrl { scheme: 'http' | 'https', authority: string, host: string, port: number, target: string }

/** `http(s)://authority/target`, the target kept as written (not normalised: that is the router's job). */
function parseUrl (raw: string): ParsedUrl {
  const m = /^(https?):\/\/([^/?#]*)([^#]*)/i.exec(raw)
  if (m === null) throw new ExplainInputError(`invalid URL "${raw}": expected http://HOST[:PORT]/PATH or https://...`)
  const scheme = (m[1] as string).toLowerCase() as 'http' | 'https'
  const authority = (m[2] as string).replace(/^.*@/, '')
  let target = m[3] as string
  if (/[\0-\x20\x7f]/.test(target)) throw new ExplainInputError(`invalid URL "${raw}": spaces and control characters must be percent-encoded`)
  if (target === '') target = '/'
  else if (target.startsWith('?')) target = `/${target}`
  const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(authority)
  if (authority === '' || hp === null) throw new ExplainInputError(`invalid URL "${raw}": bad host "${authority}"`)
  const port = hp[2] === undefined || hp[2] === '' ? (scheme === 'https' ? 443 : 80) : Number(hp[2])
  if (port > 65535) throw new ExplainInputError(`invalid URL "${raw}": port out of range`)
  return { scheme, authority, host: (hp[1] as string).replace(/^\[(.*)\]$/, '$1').toLowerCase(), port, target }
}

/**
 * The listen address a connection to the URL reaches, as the kernel picks it: an address bound
 * for the URL's IP and port before a wildcard one on that port. A host name is not resolved:
 * the wildcard address is taken, else the only one on the port (`listen` chooses).
 */
function pickListen (config: ResolvedConfig, given: ParsedUrl, wanted: string | undefined): { listen: ResolvedListen, why: string } {
  let url = given
  const keys = config.listens.map((l) => l.key).join(', ')
  if (wanted !== undefined) {
    let key = wanted
    try { key = parseListenAddress(wanted, config.baseDir).key } catch {}
    const listen = config.listens.find((l) => l.key === key || l.key === wanted)
    if (listen === undefined) throw new ExplainInputError(`no listen address "${wanted}" in the config (it has ${keys})`)
    return { listen, why: 'chosen with --listen' }
  }
  const onPort = config.listens.filter((l) => l.kind === 'tcp' && l.port === url.port)
  if (onPort.length === 0) throw new ExplainInputError(`no listen address on port ${url.port} (the config has ${keys}); use --listen to choose one`)
  // The name every machine resolves alike; any other name is left unresolved.
  if (url.host === 'localhost') {
    const local = onPort.find((l) => l.host === '127.0.0.1')
    if (local !== undefined) return { listen: local, why: `"localhost" is ${local.key}` }
    url = { ...url, host: '127.0.0.1' }
  }
  const family = isIP(url.host)
  const wildcard = (l: ResolvedListen): boolean => family === 6 ? l.host === '::' : l.host === '0.0.0.0' || (l.host === '::' && !l.ipv6Only)
  if (family !== 0) {
    const exact = onPort.find((l) => l.host.toLowerCase() === url.host)
    if (exact !== undefined) return { listen: exact, why: `the URL's address ${exact.key}` }
    const any = onPort.find(wildcard)
    if (any !== undefined) return { listen: any, why: `port ${url.port} on every address (nothing listens on ${url.host} alone)` }
    throw new ExplainInputError(`no listen address takes ${url.host}:${url.port} (the config has ${keys}); use --listen to choose one`)
  }
  const any = onPort.find((l) => l.host === '0.0.0.0') ?? onPort.find((l) => l.host === '::')
  if (any !== undefined) return { listen: any, why: `port ${url.port} on every address (the name "${url.host}" is not resolved)` }
  const first = onPort[0] as ResolvedListen
  return {
    listen: first,
    why: onPort.length === 1
      ? `the only address on port ${url.port} (taken to be what "${url.host}" resolves to)`
      : `the first address on port ${url.port} ("${url.host}" is not resolved; --listen chooses among ${onPort.map((l) => l.key).join(', ')})`
  }
}

/** The request as Node's HTTP server hands it over: headers parsed by Node's own code, the socket's addresses. */
function fakeRequest (method: string, target: string, headers: Array<[string, string]>, listen: ResolvedListen, client: string): RoutedRequest {
  const socket = new Socket()
  const local = listen.kind === 'unix' ? undefined : listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host
  Object.defineProperties(socket, {
    remoteAddress: { value: listen.kind === 'unix' ? undefined : client },
    remotePort: { value: listen.kind === 'unix' ? undefined : 54321 },
    localAddress: { value: local },
    localPort: { value: listen.kind === 'unix' ? undefined : listen.port },
    encrypted: { value: listen.scheme === 'https' ? true : undefined }
  })
  const req = new IncomingMessage(socket) as RoutedRequest
  req.method = method
  req.url = target
  req.httpVersion = '1.1'
  req.httpVersionMajor = 1
  req.httpVersionMinor = 1
  const raw = headers.flat()
  req.rawHeaders = raw
  ;(req as unknown as { _addHeaderLines: (h: string[], n: number) => void })._addHeaderLines(raw, raw.length)
  return req
}

function chainOf (loc: ResolvedLocation): ResolvedLocation[] {
  const chain: ResolvedLocation[] = []
  for (let l: ResolvedLocation | undefined = loc; l !== undefined; l = l.parent) chain.unshift(l)
  return chain
}

const SHOWN_VARIABLES = ['uri', 'args', 'request_uri', 'host', 'http_host', 'server_name', 'scheme', 'remote_addr', 'server_addr', 'server_port']

/** The variables an operator asks about first, then the captures in force ($1.., named groups). */
function variables (ctx: RequestContext): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of SHOWN_VARIABLES) out[name] = compileTemplate(`$${name}`).render(ctx)
  const m = ctx.captures
  if (m !== null) {
    for (let i = 1; i < m.length; i++) out[String(i)] = m[i] ?? ''
    for (const [name, value] of Object.entries(m.groups ?? {})) out[name] = value ?? ''
  }
  return out
}

/** The plugins a location's requests run through, outer scopes first (global, server, enclosing locations, its own). */
function pluginsInScope (config: ResolvedConfig, server: ResolvedServer, loc: ResolvedLocation | undefined): Array<{ name: string, scope: string }> {
  const out: Array<{ name: string, scope: string }> = []
  const add = (entries: readonly PluginEntry[], scope: string): void => { for (const e of entries) out.push({ name: pluginName(e), scope }) }
  add(config.plugins, 'plugins')
  add(server.plugins, `${server.keyPath}.plugins`)
  if (loc !== undefined) for (const l of chainOf(loc)) add(l.plugins, `${l.keyPath}.plugins`)
  return out
}

/** fastify-plugin's name, else the function's name. */
function pluginName (entry: PluginEntry): string {
  const plugin = Array.isArray(entry) ? entry[0] : typeof entry === 'object' && 'plugin' in entry ? entry.plugin : entry
  const fn = (typeof plugin === 'function' ? plugin : plugin.default) as unknown as Record<symbol, unknown> & { name?: string }
  const meta = fn[Symbol.for('plugin-meta')] as { name?: string } | undefined
  return meta?.name ?? (fn[Symbol.for('fastify.display-name')] as string | undefined) ?? (fn.name !== undefined && fn.name !== '' ? fn.name : '(anonymous)')
}
