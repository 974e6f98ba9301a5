import { resolveCompress } from './compress.js'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { ConfigError, ConfigErrors } from '../errors.js'
import { LocationTree, parseLocationKey, validateLocationTree } from '../routing/location-tree.js'
import { conflictingServerNames, parseServerName, ServerSelector } from '../routing/server-select.js'
import { compileTemplate, TemplateError } from '../variables/compile.js'
import type { CompileScope, Template } from '../variables/types.js'
import { compileMap, mapValue, type CompiledMap } from '../variables/map.js'
import type { RequestContext } from '../routing/request-context.js'
import { respond } from '../handlers/respond.js'
import { checkErrorPageTargets, parseErrorPages, sendStatus } from '../handlers/error-pages.js'
import { addAutoRedirects } from '../routing/auto-redirect.js'
import { compilePcre, namedGroups } from '../routing/pcre.js'
import type { RewriteFlag, RewriteRule } from '../routing/rewrite.js'
import { defineHandler, isHandler } from '../handlers/define-handler.js'
import { locationRoute, serverFallbackRoute, serverReturnRoute } from '../routing/route-urls.js'
import { defaultListen, parseListenAddress, type ParsedListen } from './listen.js'
import { checkShape, formatKeyPath } from './schema.js'
import { hostResolves } from './preflight.js'
import { parseAccessRule, type AccessRule } from './access.js'
import { parseUpstreamAddress } from './upstream-address.js'
import { compileLogFormats, defaultAccessLog, resolveAccessLog } from './access-log.js'
import { LIMIT_DEFAULTS, resolveConnectionLimits, resolveRequestLimits } from './limits.js'
import { resolveCacheZones } from './caches.js'
import { RATE_LIMIT_DEFAULTS, resolveRateLimits, resolveZones, type RateLimitZones } from './rate-limits.js'
import { CONTENT_DEFAULTS, resolveContent } from './content.js'
import { compileAddHeaders } from '../http/response-headers.js'
import type { ResolvedConfig, ResolvedListen, ResolvedLocation, ResolvedServer } from './model.js'
import { loadListenTls, loadUpstreamTls, type ResolvedUpstreamTls } from './tls.js'
import { MetricsRegistry } from '../metrics/registry.js'
import type { ResolvedMetrics } from './model.js'
import type { MetricsConfig } from './types.js'
import type { HandlerCompileEnv, ListenConfig, LocationConfig, LocationHandler, ProxyConfig, RewriteConfig } from './types.js'

function toList<T> (v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v]
}

/**
 * Validates a config and resolves it. Throws ConfigErrors listing every problem found, each
 * with its key path, so one `proxyctl check` run shows them all.
 */
export interface ResolveOptions {
  file?: string
  /**
   * The config in force, on a reload: objects it carried (env.carry) whose definition is
   * unchanged are reused, the metrics registry is kept (counters go on) and the generation is one more.
   */
  previous?: ResolvedConfig
}

export function resolveConfig (input: unknown, options: ResolveOptions = {}): ResolvedConfig {
  // Resolving is synchronous: env.carry reads the config it replaces from here, and nothing keeps it after.
  replacing = options.previous
  try { return resolveFresh(input, options) } finally { replacing = undefined }
}

function resolveFresh (input: unknown, options: ResolveOptions): ResolvedConfig {
  const file = options.file === undefined ? undefined : path.resolve(options.file)
  const fail = (errors: ConfigError[]): never => {
    const e = new ConfigErrors(errors)
    if (file !== undefined) e.setFile(file)
    throw e
  }
  const shape = checkShape(input)
  if (shape.config === undefined) return fail(shape.errors)
  const config = shape.config
  const baseDir = file === undefined ? process.cwd() : path.dirname(file)
  const errors: ConfigError[] = []
  const warnings: string[] = []
  const upstreams = new Map(Object.entries(config.upstreams ?? {}))
  const upstreamTls = new Map<string, ResolvedUpstreamTls>()

  const resolved: ResolvedConfig = {
    file,
    baseDir,
    servers: [],
    listens: [],
    upstreams,
    upstreamTls,
    plugins: config.plugins ?? [],
    logLevel: config.logLevel ?? 'info',
    shutdownTimeout: config.shutdownTimeout ?? 10_000,
    workers: config.workers ?? 1,
    tempPath: path.resolve(baseDir, config.tempPath ?? os.tmpdir()),
    limits: resolveConnectionLimits(config, LIMIT_DEFAULTS),
    content: resolveContent(config, CONTENT_DEFAULTS),
    limitZones: { req: new Map(), conn: new Map(), redis: new Map() } satisfies RateLimitZones,
    rateLimits: RATE_LIMIT_DEFAULTS,
    caches: resolveCacheZones(config, baseDir, errors),
    addHeaders: undefined,
    compress: resolveCompress(config.compress, undefined),
    proxySetHeaders: config.proxySetHeaders,
    accessLog: null,
    shared: new Map(),
    carried: new Map(),
    handedOver: new Set(),
    preflight: [],
    warnings,
    metrics: {
      listen: metricsListen(config.metrics, baseDir, errors),
      registry: options.previous?.metrics.registry ?? new MetricsRegistry(),
      on: config.metrics !== undefined,
      generation: (options.previous?.metrics.generation ?? 0) + 1
    }
  }

  // Upstream servers are read here, so a bad address names its upstream; hostnames must resolve.
  for (const [name, u] of upstreams) {
    u.servers.forEach((entry, i) => {
      const raw = typeof entry === 'string' ? entry : entry.address
      const keyPath = formatKeyPath(typeof entry === 'string' ? ['upstreams', name, 'servers', i] : ['upstreams', name, 'servers', i, 'address'])
      try {
        const a = parseUpstreamAddress(raw)
        if (a.kind === 'hostname') resolved.preflight.push(hostResolves(keyPath, a.host, `host not found in upstream "${raw}"`))
      } catch (err) { errors.push(new ConfigError(keyPath, (err as Error).message)) }
    })
    upstreamTls.set(name, loadUpstreamTls(u.tls, baseDir, formatKeyPath(['upstreams', name, 'tls']), errors))
  }

  // As in nginx, a named group of any server name, location or rewrite regex is a variable
  // everywhere (empty where unset), wherever in the config it is written.
  const namedCaptures = declaredCaptures(config)
  const defined = new Map<string, (ctx: RequestContext) => string>()
  const scope: CompileScope = { namedCaptures, defined }
  // A map is a variable everywhere, as nginx's: declared now, compiled below.
  const compiledMaps = new Map<string, CompiledMap>()
  const compileHeader = (source: string, keyPath: string): Template => {
    try { return compileTemplate(source, scope) } catch (err) { throw new ConfigError(keyPath, (err as Error).message) }
  }
  ;(resolved as { addHeaders: ResolvedConfig['addHeaders'] }).addHeaders = compileAddHeaders(config.addHeaders, undefined, compileHeader, 'addHeaders', errors)
  for (const name of Object.keys(config.maps ?? {})) {
    defined.set(name, (ctx) => { const m = compiledMaps.get(name); return m === undefined ? '' : mapValue(m, ctx) })
  }
  // After the maps are declared, so a format may log a map's variable.
  const logFormats = compileLogFormats(config, baseDir, scope, errors)
  const zones = resolveZones(config, scope, errors)
  ;(resolved as { limitZones: RateLimitZones }).limitZones = zones
  ;(resolved as { rateLimits: ResolvedConfig['rateLimits'] }).rateLimits = resolveRateLimits(config, RATE_LIMIT_DEFAULTS, zones, '', errors)
  ;(resolved as { accessLog: ResolvedConfig['accessLog'] }).accessLog = config.accessLog === undefined
    ? defaultAccessLog(logFormats)
    : resolveAccessLog(config.accessLog, null, logFormats, 'accessLog', errors)
  let nextLocationId = 0
  const listensByKey = new Map<string, ResolvedListen>()
  const defaultClaims = new Map<string, string>()
  /** TLS addresses where a server's certificate could not be loaded (its error is reported already). */
  const tlsFailed = new Set<ResolvedListen>()

  config.servers.forEach((sc, si) => {
    const keyPath = `servers[${si}]`
    const names = toList(sc.serverName)
    names.forEach((n, ni) => {
      try {
        parseServerName(n)
      } catch (err) {
        errors.push(new ConfigError(`${keyPath}.serverName${Array.isArray(sc.serverName) ? `[${ni}]` : ''}`, (err as Error).message))
      }
    })
    // $server_name: the first name as written (a regex with its "~"), nginx's ".example.org" without its dot.
    const first = names[0]
    const primary = first === undefined ? '' : typeof first === 'string' ? first.replace(/^\.(?=.)/, '') : `~${first.source}`
    const server: ResolvedServer = {
      position: si,
      keyPath,
      names,
      primaryName: primary,
      root: sc.root === undefined ? undefined : path.resolve(baseDir, sc.root),
      index: sc.index,
      plugins: sc.plugins ?? [],
      locations: [],
      named: new Map(),
      all: [],
      tree: undefined as never,
      listens: [],
      errorPages: sc.errorPages === undefined ? undefined : parseErrorPages(sc.errorPages, keyPath, scope, errors),
      limits: resolveConnectionLimits(sc, resolved.limits),
      rateLimits: resolveRateLimits(sc, resolved.rateLimits, zones, keyPath, errors),
      access: sc.access === undefined ? [] : parseAccess(sc.access, `${keyPath}.access`, errors),
      rewrites: parseRewrites(sc.rewrite, `${keyPath}.rewrite`, scope, errors),
      returnTo: sc.return === undefined ? undefined : { handler: sc.return, routeUrl: serverReturnRoute(si) },
      content: resolveContent(sc, resolved.content),
      addHeaders: compileAddHeaders(sc.addHeaders, resolved.addHeaders, compileHeader, `${keyPath}.addHeaders`, errors),
      compress: resolveCompress(sc.compress, resolved.compress),
      proxySetHeaders: sc.proxySetHeaders ?? resolved.proxySetHeaders,
      accessLog: resolveAccessLog(sc.accessLog, resolved.accessLog, logFormats, `${keyPath}.accessLog`, errors),
      fallback: { handler: sc.handler ?? respond(404), routeUrl: serverFallbackRoute(si) }
    }
    resolved.servers.push(server)

    // Listen addresses: servers on the same address share one listener.
    const listenList = sc.listen === undefined ? [defaultListen()] : toList(sc.listen)
    listenList.forEach((lc: ListenConfig, li) => {
      const lp = sc.listen === undefined ? `${keyPath}.listen` : `${keyPath}.listen${Array.isArray(sc.listen) ? `[${li}]` : ''}`
      const obj = typeof lc === 'object' ? lc : { address: lc }
      let parsed: ParsedListen
      try { parsed = parseListenAddress(obj.address, baseDir) } catch (err) {
        errors.push(new ConfigError(lp, (err as Error).message)); return
      }
      let listen = listensByKey.get(parsed.key)
      if (listen === undefined) {
        listen = {
          ...parsed,
          scheme: 'http',
          tls: undefined,
          http2: false,
          ipv6Only: obj.ipv6Only ?? true,
          servers: [],
          defaultServer: server,
          selector: undefined as never
        }
        listensByKey.set(parsed.key, listen)
        resolved.listens.push(listen)
      }
      // As `ssl`, nginx's `http2` on any listen of an address applies to every server on it.
      if (obj.http2 === true) listen.http2 = true
      if (obj.https !== undefined) {
        // As nginx's `ssl` on any listen of an address: the address is TLS for every server on it.
        listen.scheme = 'https'
        listen.tls ??= new Map()
        if (parsed.kind === 'unix') errors.push(new ConfigError(`${lp}.https`, 'TLS on a unix socket is not supported'))
        const loaded = loadListenTls(obj.https, baseDir, `${lp}.https`, errors)
        if (loaded !== undefined) listen.tls.set(server, loaded)
        else tlsFailed.add(listen)
      }
      if (!listen.servers.includes(server)) listen.servers.push(server)
      if (!server.listens.includes(listen)) server.listens.push(listen)
      if (obj.defaultServer === true) {
        const prior = defaultClaims.get(parsed.key)
        if (prior !== undefined) {
          errors.push(new ConfigError(`${lp}.defaultServer`, `a duplicate default server for ${parsed.key} (already ${prior})`))
        } else {
          defaultClaims.set(parsed.key, keyPath)
          listen.defaultServer = server
        }
      }
    })

    // Locations: parse keys, nest, then check nginx's structural rules.
    const parseLocations = (record: Record<string, LocationConfig | LocationHandler> | undefined,
      parentPath: string, parent: ResolvedLocation | undefined): ResolvedLocation[] => {
      const out: ResolvedLocation[] = []
      for (const [key, value] of Object.entries(record ?? {})) {
        const lpath = `${parentPath}.locations[${JSON.stringify(key)}]`
        let parsed: ReturnType<typeof parseLocationKey>
        try { parsed = parseLocationKey(key) } catch (err) {
          errors.push(new ConfigError(lpath, (err as Error).message)); continue
        }
        const lc: LocationConfig = isHandler(value) ? { handler: value } : value
        const id = nextLocationId++
        const loc: ResolvedLocation = {
          id,
          key,
          keyPath: lpath,
          kind: parsed.kind,
          path: parsed.path,
          ...(parsed.regex ? { regex: parsed.regex } : {}),
          parent,
          children: [],
          server,
          handler: lc.internal === true && lc.handler !== undefined ? internalOnly(lc.handler) : lc.handler,
          compiled: undefined,
          plugins: lc.plugins ?? [],
          root: lc.root !== undefined ? path.resolve(baseDir, lc.root) : lc.alias !== undefined ? undefined : (parent?.root ?? server.root),
          alias: lc.alias === undefined ? undefined : path.resolve(baseDir, lc.alias),
          index: lc.index ?? parent?.index ?? server.index ?? ['index.html'],
          errorPages: lc.errorPages !== undefined ? parseErrorPages(lc.errorPages, lpath, scope, errors) : (parent?.errorPages ?? server.errorPages),
          limits: resolveRequestLimits(lc, parent?.limits ?? server.limits),
          rateLimits: resolveRateLimits(lc, parent?.rateLimits ?? server.rateLimits, zones, lpath, errors),
          access: lc.access === undefined ? (parent?.access ?? server.access) : parseAccess(lc.access, `${lpath}.access`, errors),
          rewrites: parseRewrites(lc.rewrite, `${lpath}.rewrite`, scope, errors),
          content: resolveContent(lc, parent?.content ?? server.content),
          addHeaders: compileAddHeaders(lc.addHeaders, parent === undefined ? server.addHeaders : parent.addHeaders, compileHeader, `${lpath}.addHeaders`, errors),
          compress: resolveCompress(lc.compress, parent === undefined ? server.compress : parent.compress),
          proxySetHeaders: lc.proxySetHeaders ?? (parent === undefined ? server.proxySetHeaders : parent.proxySetHeaders),
          accessLog: resolveAccessLog(lc.accessLog, parent === undefined ? server.accessLog : parent.accessLog, logFormats, `${lpath}.accessLog`, errors),
          internal: lc.internal === true,
          scope,
          routeUrl: locationRoute(id)
        }
        if (lc.root !== undefined && lc.alias !== undefined) errors.push(new ConfigError(`${lpath}.alias`, '"alias" and "root" cannot both be set'))
        server.all.push(loc)
        loc.children.push(...parseLocations(lc.locations, lpath, loc))
        out.push(loc)
      }
      return out
    }
    const top = parseLocations(sc.locations, keyPath, undefined)
    for (const problem of validateLocationTree(top)) {
      errors.push(new ConfigError((problem.node as ResolvedLocation).keyPath, problem.message))
    }
    for (const loc of top) {
      if (loc.kind === 'named') server.named.set(loc.path, loc)
      else server.locations.push(loc)
    }
    try { server.tree = new LocationTree(server.locations) } catch (err) {
      errors.push(new ConfigError(`${keyPath}.locations`, (err as Error).message))
    }
  })

  // Maps compile once every regex's named groups are known (their names were declared first).
  for (const [name, m] of Object.entries(config.maps ?? {})) {
    const keyPath = formatKeyPath(['maps', name])
    try {
      const compile = (source: string, sub: string): Template => {
        try { return compileTemplate(source, scope) } catch (err) { throw new ConfigError(sub, (err as Error).message) }
      }
      compiledMaps.set(name, compileMap(compile(m.source, `${keyPath}.source`), m.values, m.hostnames === true, (v, key) => compile(v, formatKeyPath(['maps', name, 'values', key]))))
    } catch (err) { errors.push(err instanceof ConfigError ? err : new ConfigError(`${keyPath}.values`, (err as Error).message)) }
  }

  // error_page targets naming a location must name one of the server's.
  for (const server of resolved.servers) errors.push(...checkErrorPageTargets(server))
  if (errors.length > 0) return fail(errors)

  // nginx: 'no "ssl_certificate" is defined for the "listen ... ssl" directive'. Other servers may
  // go without: SNI naming them gets the default server's certificate, as in nginx.
  for (const listen of resolved.listens) {
    if (listen.tls === undefined || listen.tls.has(listen.defaultServer) || tlsFailed.has(listen)) continue
    errors.push(new ConfigError(`${listen.defaultServer.keyPath}.listen`, `${listen.key} is TLS (https in another server) but its default server has no certificate there: give it https, or make a server with one the defaultServer`))
  }
  if (errors.length > 0) return fail(errors)

  for (const listen of resolved.listens) {
    const entries = listen.servers.map((s) => ({ server: s, names: s.names }))
    listen.selector = new ServerSelector(entries, listen.defaultServer)
    for (const name of conflictingServerNames(entries)) warnings.push(`conflicting server name "${name}" on ${listen.key}, ignored`)
  }
  // Overlapping binds: Node binds each address separately, so *:P and 10.0.0.1:P cannot coexist.
  for (const l of resolved.listens) {
    if (l.kind !== 'tcp' || (l.host !== '0.0.0.0' && l.host !== '::')) continue
    for (const o of resolved.listens) {
      if (o !== l && o.kind === 'tcp' && o.port === l.port && o.host.includes(':') === l.host.includes(':') && o.host !== l.host) {
        const s = o.servers[0] as ResolvedServer
        errors.push(new ConfigError(`${s.keyPath}.listen`, `${o.key} overlaps ${l.key}; listen on one of them`))
      }
    }
  }

  // Handlers compile last: they may name locations, upstreams and variables anywhere in the config.
  for (const server of resolved.servers) {
    for (const loc of server.all) {
      if (loc.handler === undefined) continue
      try { loc.compiled = loc.handler.compile(compileEnv(resolved, server, loc, `${loc.keyPath}`)) } catch (err) {
        errors.push(toConfigError(err, `${loc.keyPath}`))
      }
    }
    if (server.returnTo !== undefined) {
      try { server.returnTo.compiled = server.returnTo.handler.compile(compileEnv(resolved, server, undefined, `${server.keyPath}.return`)) } catch (err) { errors.push(toConfigError(err, `${server.keyPath}.return`)) }
    }
    try {
      server.fallback.compiled = server.fallback.handler.compile(compileEnv(resolved, server, undefined, `${server.keyPath}.handler`))
    } catch (err) { errors.push(toConfigError(err, `${server.keyPath}.handler`)) }
    const added = addAutoRedirects(server, () => nextLocationId++, (handler, loc) => handler.compile(compileEnv(resolved, server, loc, loc.keyPath)))
    if (added) server.tree = new LocationTree(server.locations)
  }
  if (errors.length > 0) return fail(errors)
  return resolved
}

/** A rewrite rule's parts; a string that is not "REGEX REPLACEMENT [FLAG]" is undefined. */
function rewriteParts (r: RewriteConfig): { regex: string, replacement: string, flag?: string } | undefined {
  if (typeof r !== 'string') return r
  const [regex, replacement, flag, ...rest] = r.trim().split(/\s+/)
  if (regex === undefined || replacement === undefined || rest.length > 0) return undefined
  return { regex, replacement, ...(flag === undefined ? {} : { flag }) }
}

/**
 * The named groups of every regex server name, location and rewrite of the config, found before
 * anything is compiled: a template may name a capture declared later in the config, as in nginx
 * (its variables are checked once the whole config is read). A bad regex is skipped here; the
 * main pass reports it with its key path.
 */
function declaredCaptures (config: ProxyConfig): Set<string> {
  const names = new Set<string>()
  const add = (regex: RegExp | undefined): void => { if (regex !== undefined) for (const n of namedGroups(regex)) names.add(n) }
  const rewrites = (rules: RewriteConfig[] | undefined): void => {
    for (const r of rules ?? []) {
      const parts = rewriteParts(r)
      if (parts !== undefined) try { add(compilePcre(parts.regex, false)) } catch {}
    }
  }
  const locations = (record: Record<string, LocationConfig | LocationHandler> | undefined): void => {
    for (const [key, value] of Object.entries(record ?? {})) {
      try { add(parseLocationKey(key).regex) } catch {}
      if (isHandler(value)) continue
      rewrites(value.rewrite)
      locations(value.locations)
    }
  }
  for (const sc of config.servers ?? []) {
    for (const n of toList(sc.serverName)) try { const p = parseServerName(n); if (p.kind === 'regex') add(p.regex) } catch {}
    rewrites(sc.rewrite)
    locations(sc.locations)
  }
  return names
}

function parseRewrites (rules: RewriteConfig[] | undefined, keyPath: string, scope: CompileScope, errors: ConfigError[]): RewriteRule[] {
  const out: RewriteRule[] = []
  for (const [i, r] of (rules ?? []).entries()) {
    const at = `${keyPath}[${i}]`
    const parts = rewriteParts(r)
    if (parts === undefined) { errors.push(new ConfigError(at, `expected "REGEX REPLACEMENT [last|break|redirect|permanent]", got "${String(r)}"`)); continue }
    if (parts.flag !== undefined && !['last', 'break', 'redirect', 'permanent'].includes(parts.flag)) { errors.push(new ConfigError(at, `unknown flag "${parts.flag}" (last, break, redirect or permanent)`)); continue }
    let regex: RegExp
    try { regex = compilePcre(parts.regex, false) } catch (err) { errors.push(new ConfigError(at, `invalid regular expression: ${(err as Error).message}`)); continue }
    let replacement: Template
    try { replacement = compileTemplate(parts.replacement, scope) } catch (err) { errors.push(new ConfigError(at, (err as Error).message)); continue }
    out.push({
      regex, replacement, flag: parts.flag as RewriteFlag | undefined, absolute: /^(https?:\/\/|\$scheme)/.test(parts.replacement),
      source: `${parts.regex} ${parts.replacement}${parts.flag === undefined ? '' : ` ${parts.flag}`}`, keyPath: at
    })
  }
  return out
}

function parseAccess (rules: string[], keyPath: string, errors: ConfigError[]): AccessRule[] {
  const out: AccessRule[] = []
  rules.forEach((r, i) => {
    try { out.push(parseAccessRule(r)) } catch (err) { errors.push(new ConfigError(`${keyPath}[${i}]`, (err as Error).message)) }
  })
  return out
}

function toConfigError (err: unknown, keyPath: string): ConfigError {
  if (err instanceof ConfigError) return err
  return new ConfigError(keyPath, (err as Error).message ?? String(err))
}

/** The config the one being resolved replaces (env.carry); not kept on the new config, so old configs are not held. */
let replacing: ResolvedConfig | undefined

function compileEnv (config: ResolvedConfig, server: ResolvedServer, location: ResolvedLocation | undefined,
  keyPath: string): HandlerCompileEnv {
  const scope: CompileScope = location?.scope ?? { namedCaptures: new Set() }
  return {
    keyPath,
    config,
    server,
    location,
    scope,
    template (source, subPath = '') {
      try { return compileTemplate(source, scope) } catch (err) {
        if (err instanceof TemplateError) throw new ConfigError(keyPath + subPath, err.message)
        throw err
      }
    },
    namedLocation (name, subPath = '') {
      const loc = server.named.get(name)
      if (loc === undefined) throw new ConfigError(keyPath + subPath, `named location "${name}" is not defined in ${server.keyPath}`)
      return loc
    },
    error (message, subPath = '') { return new ConfigError(keyPath + subPath, message) },
    shared <T>(key: string, create: () => T): T {
      if (!config.shared.has(key)) config.shared.set(key, create())
      return config.shared.get(key) as T
    },
    carry <T extends object>(key: string, definition: unknown, create: () => T): T {
      const mine = config.carried.get(key)
      if (mine !== undefined) return mine.value as T
      const before = replacing?.carried.get(key)
      const value = before !== undefined && isDeepStrictEqual(before.definition, definition) ? before.value as T : create()
      config.carried.set(key, { definition, value })
      return value
    },
    handedOver (value: object): boolean { return config.handedOver.has(value) },
    preflight (run, subPath = '') { config.preflight.push({ keyPath: keyPath + subPath, run }) },
    metrics: config.metrics.registry,
    hostResolves (host, subPath = '') { config.preflight.push(hostResolves(keyPath + subPath, host, `host not found in upstream "${host}"`)) }
  }
}


/**
 * nginx's `internal`: the location answers only requests that got there by an internal redirect
 * or a rewrite; a client's own gets 404 (through errorPages), before anything else (no auto-redirect, no
 * direct path).
 */
function internalOnly (handler: LocationHandler): LocationHandler {
  return defineHandler(`internal ${handler.description}`, (env) => {
    const compiled = handler.compile(env)
    return {
      plugin: compiled.plugin,
      handle (request, reply) {
        const ctx = request.proxyctl
        // A URI changed by rewrite counts as internal too, as nginx's docs say.
        if (ctx.internalRedirects === 0 && !ctx.uriChanged) { sendStatus(request, reply, 404); return undefined }
        return compiled.handle(request, reply)
      }
    }
  })
}

/** `metrics.listen`: an address as `listen` takes it, except that a port alone is 127.0.0.1's (metrics are for the operator, not the world). */
function metricsListen (m: MetricsConfig | undefined, baseDir: string, errors: ConfigError[]): ResolvedMetrics['listen'] {
  if (m === undefined) return undefined
  try {
    const text = typeof m.listen === 'number' || /^\d+$/.test(m.listen) ? `127.0.0.1:${m.listen}` : m.listen
    const l = parseListenAddress(text, baseDir)
    return l.kind === 'unix' ? { kind: 'unix', path: l.path } : { kind: 'tcp', host: l.host, port: l.port }
  } catch (err) {
    errors.push(new ConfigError('metrics.listen', (err as Error).message))
    return undefined
  }
}
