import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import {
  absoluteLocation, compileTemplate, defineHandler, errorPageFor, failRequest, followErrorPage, phaseHooks, registerVariable, sendErrorPage,
  type CompiledHandler, type HandlerCompileEnv, type LocationHandler, type PhaseHooks, type RequestContext, type Template
} from '@proxyctl/core'
import { UpstreamPool, type UpstreamPeer } from '../upstream/pool.js'
import type { H1Handler } from '../upstream/h1/connection.js'
import { classifyUpstreamError, UpstreamError } from './errors.js'
import { compileRequestHeaders, compileResponseHeaders, connectionTokens, type CompiledRequestHeaders, type CompiledResponseHeaders, type HeaderOptions } from './headers.js'
import { compileRedirect, type RedirectOption, type RedirectRewriter } from './redirect.js'
import { parseProxyTarget, parseRenderedTarget, ProxyTargetError, type ParsedProxyTarget } from './target.js'
import { compileUriMapping, type UriMapping } from './uri.js'

/** Cases nginx's proxy_next_upstream names; `error` and `timeout` are its default. */
export type NextUpstreamCase = 'error' | 'timeout' | 'invalid_header' | 'http_500' | 'http_502' | 'http_503' | 'http_504' | 'http_403' | 'http_404' | 'http_429' | 'non_idempotent'

export interface ProxyOptions extends HeaderOptions {
  /**
   * nginx's proxy_redirect: `'default'` (the default) rewrites `Location`/`Refresh` pointing at the
   * target back to the location; `false` is off; or a list of `{ from, to }` (string prefix or
   * RegExp/`'~ re'`, `to` a template).
   */
  redirect?: RedirectOption
  /** ms to connect (nginx's proxy_connect_timeout); for a direct URL target. Named upstreams set their own. Default 60000. */
  connectTimeout?: number
  /** ms without a byte from the upstream, while waiting for headers or between body reads (proxy_read_timeout). Default 60000. */
  readTimeout?: number
  /** ms the upstream may stop taking the request body (proxy_send_timeout). Default 60000. */
  sendTimeout?: number
  /**
   * nginx's proxy_next_upstream: when an attempt fails with one of `on`, try the next server.
   * Default `{ on: ['error', 'timeout'] }`; `false` never retries.
   */
  nextUpstream?: false | { on?: NextUpstreamCase[], tries?: number, timeout?: number }
  /** nginx's proxy_intercept_errors: upstream answers >= 300 with an `errorPages` rule go through it. Default false. */
  interceptErrors?: boolean
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE'])
const kProxyState = Symbol.for('proxyctl.proxy.request')

/** What `$upstream_addr`, `$upstream_status` and `$proxy_host` read. */
interface ProxyRequestState { addrs: string; statuses: string; proxyHost: string }
function stateOf (ctx: RequestContext): ProxyRequestState | undefined {
  return ctx.locals[kProxyState] as ProxyRequestState | undefined
}
registerVariable('upstream_addr', (c) => stateOf(c)?.addrs ?? '')
registerVariable('upstream_status', (c) => stateOf(c)?.statuses ?? '')
registerVariable('proxy_host', (c) => stateOf(c)?.proxyHost ?? '')

/** Everything one `proxy()` compiled at config load. Shared by its requests. */
export interface ProxyPlan {
  readonly upstreamNames: ReadonlySet<string>
  readonly target: ParsedProxyTarget | undefined
  readonly targetTemplate: Template | undefined
  readonly pool: UpstreamPool | undefined
  readonly poolFor: (t: ParsedProxyTarget) => UpstreamPool
  readonly mapping: UriMapping
  readonly hashKey: Template | undefined
  readonly requestHeaders: CompiledRequestHeaders
  readonly responseHeaders: CompiledResponseHeaders
  readonly redirect: RedirectRewriter | null
  readonly readTimeout: number
  readonly sendTimeout: number
  readonly next: ReadonlySet<NextUpstreamCase>
  readonly nextStatuses: ReadonlySet<number>
  readonly tries: number
  readonly tryTimeout: number
  readonly interceptErrors: boolean
  hooks: { [P in keyof PhaseHooks]: Array<PhaseHooks[P]> }
}

/**
 * Proxies the location's requests, as nginx's proxy_pass:
 * `proxy('http://app')` (a named upstream), `proxy('http://127.0.0.1:9000/prefix/')`,
 * `proxy('http://unix:/run/app.sock:/')`, or a template `proxy('http://$host$request_uri')`.
 */
export function proxy (target: string, options: ProxyOptions = {}): LocationHandler {
  return defineHandler(`proxy ${target}`, (env) => compileProxy(target, options, env).handler)
}

/** One `proxy()` compiled for its location: the plan and the handler (websocket() shares both). */
export function compileProxy (target: string, options: ProxyOptions, env: HandlerCompileEnv): { plan: ProxyPlan, handler: CompiledHandler } {
  const plan = compilePlan(target, options, env)
  const handler: CompiledHandler = {
    async plugin (instance) {
      if (plan.pool !== undefined) {
        plan.pool.log ??= instance.log
        await plan.pool.start()
      }
      instance.addHook('onClose', async () => { await plan.pool?.close(); for (const p of directPools(env).values()) await p.close() })
      plan.hooks = {
        upstreamRequest: phaseHooks(instance, 'upstreamRequest'),
        upstreamResponse: phaseHooks(instance, 'upstreamResponse'),
        upstreamError: phaseHooks(instance, 'upstreamError')
      }
    },
    handle (request, reply) {
      reply.hijack()
      startExchange(plan, request, reply)
    },
    // Without Fastify's objects: only what the exchange reads of them (and internalRedirect, which
    // it may call), which is the context, the raw request and response, and a logger.
    direct (ctx, req, res, log) {
      startExchange(plan, { proxyctl: ctx, raw: req, log } as unknown as FastifyRequest, { raw: res, hijack () {} } as unknown as FastifyReply)
    },
    autoRedirect: true
  }
  return { plan, handler }
}

function startExchange (plan: ProxyPlan, request: FastifyRequest, reply: FastifyReply): void {
  try {
    new ProxyExchange(plan, request, reply).start()
  } catch (err) {
    // Nobody else answers a hijacked reply: a bug here must not leave the client hanging.
    failRequest(request.log, request.raw, reply.raw, request.proxyctl.requestUri, err)
  }
}

function directPools (env: HandlerCompileEnv): Map<string, UpstreamPool> {
  return env.shared('proxy:direct-pools', () => new Map<string, UpstreamPool>())
}

export function compilePlan (raw: string, options: ProxyOptions, env: HandlerCompileEnv): ProxyPlan {
  const upstreamNames = new Set(env.config.upstreams.keys())
  let parsed
  try { parsed = parseProxyTarget(raw, upstreamNames) } catch (err) {
    if (err instanceof ProxyTargetError) throw env.error(err.message)
    throw err
  }
  const location = env.location === undefined ? undefined : { kind: env.location.kind, path: env.location.path }
  let mapping: UriMapping
  try {
    mapping = compileUriMapping({ uriPart: parsed.kind === 'static' ? parsed.uriPart : undefined, location, hasVariables: parsed.kind === 'template' })
  } catch (err) { throw env.error((err as Error).message) }

  const direct = directPools(env)
  const poolFor = (t: ParsedProxyTarget): UpstreamPool => {
    if (t.address.type === 'upstream') {
      const name = t.address.name
      return env.shared(`proxy:upstream:${t.scheme}:${name}`, () => {
        const config = env.config.upstreams.get(name)
        if (config === undefined) throw env.error(`unknown upstream "${name}"`)
        return new UpstreamPool(name, config, { scheme: t.scheme, ...(config.connectTimeout !== undefined ? { connectTimeout: config.connectTimeout } : {}) })
      })
    }
    const key = `${t.scheme}://${t.peer}|${options.connectTimeout ?? ''}`
    let pool = direct.get(key)
    if (pool === undefined) {
      // A direct URL is resolved once, as nginx resolves a static proxy_pass host at load.
      pool = new UpstreamPool(t.peer, { servers: [t.peer], resolveInterval: 0 }, { scheme: t.scheme, ...(options.connectTimeout !== undefined ? { connectTimeout: options.connectTimeout } : {}) })
      direct.set(key, pool)
    }
    return pool
  }
  const target = parsed.kind === 'static' ? parsed : undefined
  const pool = target === undefined ? undefined : poolFor(target)
  const balance = pool?.config.balance
  const hashKey = typeof balance === 'object' ? env.template(balance.hash, '.balance.hash') : undefined

  let redirect: RedirectRewriter | null
  try {
    redirect = compileRedirect(options.redirect, {
      target: parsed,
      location,
      compile: (src, names) => compileTemplate(src, { namedCaptures: new Set([...env.scope.namedCaptures, ...names]) })
    })
  } catch (err) { throw env.error((err as Error).message, '.redirect') }

  const next = options.nextUpstream === false ? { on: [] as NextUpstreamCase[] } : (options.nextUpstream ?? {})
  const on = new Set<NextUpstreamCase>(next.on ?? ['error', 'timeout'])
  const nextStatuses = new Set<number>()
  for (const c of on) if (c.startsWith('http_')) nextStatuses.add(Number(c.slice(5)))

  return {
    upstreamNames,
    target,
    targetTemplate: parsed.kind === 'template' ? env.template(raw) : undefined,
    pool,
    poolFor,
    mapping,
    hashKey,
    requestHeaders: compileRequestHeaders(options, env),
    responseHeaders: compileResponseHeaders(options),
    redirect,
    readTimeout: options.readTimeout ?? 60_000,
    sendTimeout: options.sendTimeout ?? 60_000,
    next: on,
    nextStatuses,
    tries: next.tries ?? 0,
    tryTimeout: next.timeout ?? 0,
    interceptErrors: options.interceptErrors ?? false,
    hooks: { upstreamRequest: [], upstreamResponse: [], upstreamError: [] }
  }
}

/** What the upstream-peer and upstream-request phases read of an exchange (proxy or tunnel). */
export interface ExchangeState {
  readonly plan: ProxyPlan
  readonly pool: UpstreamPool
  readonly ctx: RequestContext
  readonly req: IncomingMessage
  readonly log: FastifyBaseLogger
  readonly tried: Set<UpstreamPeer>
  readonly state: ProxyRequestState
  readonly upstreamName: string
  readonly proxyHost: string
  readonly path: string
  attempts: number
  finishWithError (error: UpstreamError | undefined, status?: number): void
}

/**
 * The upstream peer phase: the next server for this request (balancer, health, tries), counted
 * in `$upstream_addr`; or null, after logging nginx's "no live upstreams" and answering 502.
 */
export function pickPeer (x: ExchangeState): UpstreamPeer | null {
  const sel = x.pool.pick({
    key: x.plan.hashKey?.render(x.ctx),
    clientAddress: x.ctx.socket.remoteAddress,
    tried: x.tried as Set<never>,
    request: x.ctx
  }, Date.now())
  if (sel.peer === null) {
    x.log.error({ upstream: x.upstreamName, reason: sel.reason.message, counts: sel.reason.counts }, `${sel.reason.message} while connecting to upstream`)
    x.finishWithError(undefined, 502)
    return null
  }
  const peer = sel.peer as UpstreamPeer
  x.attempts++
  x.state.addrs = x.state.addrs === '' ? peer.address : `${x.state.addrs}, ${peer.address}`
  return peer
}

/** How many servers a request may try: as nginx, the group's tries, lowered (never raised) by `nextUpstream.tries`. */
export function tryBudget (plan: ProxyPlan, pool: UpstreamPool): number {
  const groupTries = pool.group.tries
  return plan.tries > 0 && plan.tries < groupTries ? plan.tries : groupTries
}

/** The upstream request phase: method, path and headers for `peer`, after the plugins' hooks. */
export function upstreamRequestHead (x: ExchangeState, peer: UpstreamPeer, withoutBody = false): { method: string, path: string, headers: string[] } {
  const head = {
    method: x.req.method ?? 'GET',
    path: x.path,
    headers: x.plan.requestHeaders.build(x.ctx, x.req, x.proxyHost, withoutBody),
    peer: peer.address,
    upstream: x.upstreamName
  }
  for (const hook of x.plan.hooks.upstreamRequest) hook(x.ctx, head)
  return head
}

/**
 * The response filter phase: the upstream's head as the client gets it. Hop-by-hop headers and
 * those the upstream's Connection names are dropped, hidden ones too, Location and Refresh are
 * rewritten (proxy_redirect), then the plugins' upstreamResponse hooks run.
 */
export function filterResponseHead (x: ExchangeState, peer: UpstreamPeer, status: number, rawHeaders: ReadonlyArray<Buffer | string>): { status: number, headers: string[] } {
  const plan = x.plan
  let named: Set<string> | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i] as Buffer | string
    if (n.length === 10 && latin1(n).toLowerCase() === 'connection') {
      // Almost always "keep-alive" or "close", which name no other header: skip the parse.
      const v = latin1(rawHeaders[i + 1] as Buffer | string)
      if (v !== 'keep-alive' && v !== 'close') named = connectionTokens(v)
    }
  }
  const head = { status, headers: [] as string[], peer: peer.address, upstream: x.upstreamName }
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = latin1(rawHeaders[i] as Buffer | string)
    const lower = name.toLowerCase()
    if (!plan.responseHeaders.keep(lower, named)) continue
    let value = latin1(rawHeaders[i + 1] as Buffer | string)
    if (plan.redirect !== null && (lower === 'location' || lower === 'refresh')) {
      const rewritten = plan.redirect(value, x.ctx, lower)
      if (rewritten !== undefined) value = lower === 'location' ? absoluteLocation(rewritten, x.ctx) : rewritten
    }
    head.headers.push(name, value)
  }
  for (const hook of plan.hooks.upstreamResponse) hook(x.ctx, head)
  return head
}

/** A raw header name or value as a string (undici gives Buffers, some paths strings). */
export function latin1 (v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1')
}

/**
 * One client request through the proxy, told as phases: pick a peer (upstream_peer), shape the
 * request (upstream_request), stream it; shape the response (response_filter), stream it back;
 * on failure retry the next peer or answer 502/504 (error); the caller's onResponse logs.
 */
class ProxyExchange implements ExchangeState {
  readonly tried = new Set<UpstreamPeer>()
  readonly started = Date.now()
  readonly hasBody: boolean
  readonly bodyGone: boolean
  readonly state: ProxyRequestState
  pool!: UpstreamPool
  path = ''
  upstreamName = ''
  proxyHost = ''
  attempts = 0
  /** Tries granted beyond the budget: one per cached connection that failed (see Attempt.onError). */
  extraTries = 0
  /** The attempt in flight; callbacks of an older one are ignored. */
  current: Attempt | undefined
  responded = false
  clientGone = false
  /** An exchange on the same connection still answering when this one began (pipelining). */
  pipelinedAfter: ProxyExchange | undefined

  readonly ctx: RequestContext
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly log: FastifyBaseLogger

  constructor (readonly plan: ProxyPlan, readonly request: FastifyRequest, readonly reply: FastifyReply) {
    this.ctx = request.proxyctl
    this.req = request.raw
    this.res = reply.raw
    this.log = request.log
    const ctx = this.ctx
    const req = this.req
    const h = req.headers
    // A body another location already streamed (an error page after a proxied POST) is gone:
    // send none, as a GET (we do not buffer bodies to send them twice, unlike nginx).
    this.bodyGone = req.readableDidRead
    this.hasBody = !this.bodyGone && ((h['content-length'] !== undefined && h['content-length'] !== '0') || h['transfer-encoding'] !== undefined)
    this.state = { addrs: '', statuses: '', proxyHost: '' }
    ctx.locals[kProxyState] = this.state
  }

  start (): void {
    const plan = this.plan
    const ctx = this.ctx
    let target = plan.target
    let renderedUri: string | undefined
    if (target === undefined) {
      try {
        target = parseRenderedTarget((plan.targetTemplate as Template).render(ctx), plan.upstreamNames)
      } catch (err) {
        this.log.error({ reason: (err as Error).message }, (err as Error).message)
        sendErrorPage(this.res, 500)
        return
      }
      renderedUri = target.uriPart
    }
    this.pool = plan.pool ?? plan.poolFor(target)
    this.upstreamName = target.address.type === 'upstream' ? target.address.name : target.peer
    this.proxyHost = this.state.proxyHost = target.proxyHost
    this.path = plan.mapping({ uri: ctx.uri, requestUri: ctx.requestUri, args: ctx.args, uriChanged: ctx.uriChanged, internal: ctx.internalRedirects > 0 }, renderedUri)
    watchClient(this)
    if (plan.pool === undefined) {
      this.pool.log ??= this.log
      this.pool.start().then(() => this.attempt(), (err: unknown) => this.finishWithError(classifyUpstreamError(err, 'connecting')))
    } else this.attempt()
  }

  /** The client's connection closed: if this exchange was still answering, stop its upstream request. */
  clientClosed (): void {
    if (this.res.writableFinished) return
    this.clientGone = true
    this.current?.abort()
  }

  /**
   * A bug (a phase hook or proxyctl itself threw) while this exchange was under way: 500 and
   * close, one error line, never the process. The caller has ended its attempt first, so the
   * upstream is not blamed.
   */
  internalError (err: unknown): void {
    if (this.clientGone) return
    this.responded = true
    failRequest(this.log, this.req, this.res, this.ctx.requestUri, err)
  }

  /** upstream peer, then upstream request: one try at one server. */
  attempt (): void {
    try {
      this.attemptOnce()
    } catch (err) {
      this.internalError(err)
    }
  }

  private attemptOnce (): void {
    const peer = pickPeer(this)
    if (peer === null) return
    const plan = this.plan
    const { method, path, headers } = upstreamRequestHead(this, peer, this.bodyGone)
    const attempt = new Attempt(this, peer)
    this.current = attempt
    const body = this.hasBody ? this.req : null
    if (body === null && peer.h1 !== undefined) {
      // The hot path: proxyctl's own HTTP/1.1 client reads into reused buffers and hands body
      // pieces over without a copy (upstream/h1/). Bodies to send, TLS and upgrades stay on undici.
      peer.h1.dispatch({ method, path: wirePath(path), headers }, attempt)
      return
    }
    if (body !== null) attempt.watchSend(plan.sendTimeout)
    ;(peer.pool as Dispatcher).dispatch({
      method,
      path: wirePath(path),
      headers,
      body,
      // readTimeout is the attempt's own timer (see onReadTimer), not undici's.
      headersTimeout: 0,
      bodyTimeout: 0,
      // We decide on retries; undici must not replay a request on its own.
      idempotent: false
    }, attempt)
  }

  /** nginx's conditions for trying the next server (ngx_http_upstream_next). */
  canRetry (kind: NextUpstreamCase, sent: boolean): boolean {
    const plan = this.plan
    if (this.clientGone || !plan.next.has(kind)) return false
    if (this.attempts >= tryBudget(plan, this.pool) + this.extraTries) return false
    if (plan.tryTimeout > 0 && Date.now() - this.started >= plan.tryTimeout) return false
    // A body we streamed cannot be sent again (we do not buffer it, unlike nginx).
    if (this.hasBody && this.req.readableDidRead) return false
    if (sent && !IDEMPOTENT.has(this.req.method ?? 'GET') && !plan.next.has('non_idempotent')) return false
    return true
  }

  /** An attempt failed for good: tell the log, the hooks, then retry or answer. */
  failed (error: UpstreamError, peer: UpstreamPeer, sent: boolean): void {
    this.log.error({ upstream: this.upstreamName, server: peer.address, code: error.code, reason: error.message, request: `${this.req.method} ${this.ctx.requestUri}` },
      `${error.message}, upstream: "${this.upstreamName}", server: ${peer.address}`)
    for (const hook of this.plan.hooks.upstreamError) hook(this.ctx, { peer: peer.address, upstream: this.upstreamName, code: error.code, reason: error.message })
    if (this.responded) {
      // Headers are out: the client can only learn of it by a cut connection.
      this.res.destroy(error)
      return
    }
    if (this.canRetry(error.kind, sent)) { this.attempt(); return }
    this.finishWithError(error)
  }

  finishWithError (error: UpstreamError | undefined, status = error?.status ?? 502): void {
    if (this.clientGone) return
    if (this.hasBody && !this.req.readableEnded) {
      // The rest of the body is not read: answer, then close, as nginx does.
      this.res.setHeader('connection', 'close')
      // Node detaches req.socket once the response is done: hold on to it now.
      const socket = this.ctx.socket
      this.res.once('finish', () => socket?.destroySoon())
    }
    // nginx's own 502/504 go through error_page (proxy_intercept_errors is only for upstream answers).
    const rule = errorPageFor(this.ctx, status)
    if (rule !== undefined) { followErrorPage(this.request, this.reply, rule, status); return }
    sendErrorPage(this.res, status)
  }
}

const kAnswering = Symbol('proxyctl.proxy.answering')
type WatchedSocket = Socket & { [kAnswering]?: ProxyExchange }

/**
 * Ties an exchange to its client connection, so a client that leaves aborts the upstream request.
 * One 'close' listener per connection, not one per response: a keep-alive connection answers many
 * requests, and adding and removing a listener each time showed in the profile. The connection
 * holds its newest exchange; one pipelined behind a busy exchange links to it, because Node emits
 * no 'close' on a response still queued behind another.
 */
function watchClient (x: ProxyExchange): void {
  const socket = x.ctx.socket as WatchedSocket
  const newest = socket[kAnswering]
  if (newest === undefined) socket.once('close', onClientClose)
  // An internal redirect (error page) continues the same answer: keep what it was queued behind.
  else if (newest.res === x.res) x.pipelinedAfter = newest.pipelinedAfter
  else if (!newest.res.writableFinished) x.pipelinedAfter = newest
  socket[kAnswering] = x
}

function onClientClose (this: WatchedSocket): void {
  for (let x = this[kAnswering]; x !== undefined; x = x.pipelinedAfter) x.clientClosed()
}

/**
 * The path as undici must get it: undici writes the request line as latin1 and refuses characters
 * outside 0x21-0xFF. A path rendered from decoded variables (`$1`, `$uri`) is text; nginx sends its
 * UTF-8 bytes, so those go as one latin1 character per byte. Space and control bytes, which nginx
 * sends raw (breaking the request line), are percent-encoded instead.
 */
export function wirePath (path: string): string {
  if (/^[\x21-\x7e]*$/.test(path)) return path
  return Buffer.from(path, 'utf8').toString('latin1')
    .replace(/[\x00-\x20]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'))
}

/**
 * Whether body pieces may be written to the client socket itself instead of through
 * ServerResponse#write, which corks the socket and uncorks it on the next tick for every piece.
 * Measured on 1 MiB responses (bench rig, a raw-socket proxy floor): +17% per core. Only when
 * nothing between changes the bytes: the response owns the socket (not queued behind a pipelined
 * one), has a body, and is not chunk-encoded by Node (the upstream gave a Content-Length, or
 * the client speaks HTTP/1.0 and the body runs until close).
 * res.end() still ends the response: with a Content-Length it adds no bytes.
 */
function canWriteDirect (res: ServerResponse): boolean {
  const socket = res.socket as (Socket & { _httpMessage?: unknown }) | null
  return socket !== null && socket._httpMessage === res && !res.chunkedEncoding &&
    (res as unknown as { _hasBody: boolean })._hasBody
}

/**
 * proxy_read_timeout is kept by the attempt with one Node timer, not by undici's headersTimeout
 * and bodyTimeout. Those run on undici's "fast timers": a request's timer object stays in a
 * module-wide array until a 0.5 s sweep removes it, so at 24k req/s every request's timer
 * outlived two scavenges and was promoted. The old generation then grew by ~3 MiB/s of dead
 * timers between full collections: ~15 MiB of peak RSS under small GETs. A Node timer cleared
 * when the attempt ends dies young. It is armed once; a read only notes the time (`lastRead`),
 * and the timer, when it fires, arms itself again for what is left.
 */
function onReadTimer (attempt: Attempt): void { attempt.readTimerFired() }

/** One try at one peer; the undici dispatch handler of that try. */
class Attempt implements Dispatcher.DispatchHandler, H1Handler {
  private abortFn: ((err?: Error) => void) | undefined
  private sent = false
  private done = false
  private sendTimer: NodeJS.Timeout | undefined
  private readTimer: NodeJS.Timeout | undefined
  /** performance.now() of the last byte from the upstream, or of the request's last byte. */
  private lastRead = 0
  private headersSeen = false
  /** onData returned false: undici waits for the client to drain, so no read is due. */
  private paused = false
  private resumeFn: (() => void) | undefined
  private drained: (() => void) | undefined
  /** The upstream's answer went to an error page: its body is read and dropped. */
  private discarding = false
  /** Body pieces after the first may go straight to the client socket (canWriteDirect). */
  private direct = false
  private sink: Socket | null = null

  constructor (private readonly x: ProxyExchange, readonly peer: UpstreamPeer) {
    peer.acquire()
  }

  abort (err?: Error): void {
    if (this.abortFn !== undefined) this.abortFn(err)
    else this.aborted = err ?? new Error('aborted')
  }

  private aborted: Error | undefined

  /** Releases the peer once, whatever ends the attempt. */
  private end (): void {
    if (this.done) return
    this.done = true
    if (this.sendTimer !== undefined) clearInterval(this.sendTimer)
    if (this.readTimer !== undefined) clearTimeout(this.readTimer)
    this.peer.release()
  }

  onConnect (abort: (err?: Error) => void): void {
    this.abortFn = abort
    this.sent = true
    if (this.aborted !== undefined || this.x.clientGone) { abort(this.aborted); return }
    // undici calls onConnect as it starts writing the request: from here on the upstream owes us bytes.
    const limit = this.x.plan.readTimeout
    if (limit > 0) {
      this.lastRead = performance.now()
      this.readTimer = setTimeout(onReadTimer, limit, this).unref()
    }
  }

  /** The read timer ran out: abort (504), or arm it again if a read came since or none is due. */
  readTimerFired (): void {
    const x = this.x
    const limit = x.plan.readTimeout
    // While the client still sends its body, or we wait for it to take ours, the upstream owes
    // nothing (nginx arms proxy_read_timeout once the request is sent); the body's end (watchSend)
    // and the client's drain (onDrain) restart the count.
    const idle = this.paused || (x.hasBody && !x.req.readableEnded) ? 0 : performance.now() - this.lastRead
    if (idle < limit) {
      this.readTimer = setTimeout(onReadTimer, limit - idle, this).unref()
      return
    }
    // undici closes the connection; it then opens one idle replacement (undici issue #5845).
    this.abort(new UpstreamError('PROXYCTL_UPSTREAM_TIMEOUT', 'timeout', 504,
      `upstream timed out while ${this.headersSeen ? 'reading upstream' : 'reading response header'}`))
  }

  onHeaders (status: number, rawHeaders: Array<Buffer | string>, resume: () => void): boolean {
    try {
      return this.head(status, rawHeaders, resume)
    } catch (err) {
      // A response hook threw (inside the upstream client's read): drop this upstream request
      // without counting it against the server, and answer 500.
      this.end()
      this.abortFn?.()
      this.x.internalError(err)
      return false
    }
  }

  private head (status: number, rawHeaders: Array<Buffer | string>, resume: () => void): boolean {
    this.lastRead = performance.now()
    if (status < 200) return true // 100 Continue: the client got ours already
    this.headersSeen = true
    const x = this.x
    const plan = x.plan
    const peer = this.peer
    x.state.statuses = x.state.statuses === '' ? String(status) : `${x.state.statuses}, ${status}`
    if (plan.nextStatuses.has(status) && x.canRetry(`http_${status}` as NextUpstreamCase, true)) {
      // nginx counts the 5xx/429 named in proxy_next_upstream as failures; 403 and 404 never.
      if (status !== 403 && status !== 404) peer.recordFailure(Date.now())
      this.end()
      this.abortFn?.()
      x.attempt()
      return false
    }
    peer.recordSuccess()
    if (plan.interceptErrors && status >= 300) {
      const rule = errorPageFor(x.ctx, status)
      if (rule !== undefined) {
        // Drain and drop the upstream's error body instead of aborting: an abort makes undici
        // destroy the request body stream, which is the client's request.
        this.discarding = true
        // Not from inside undici's parser callback: a dispatch re-entering the pool there stalls.
        process.nextTick(followErrorPage, x.request, x.reply, rule, status)
        return true
      }
    }
    if (x.ctx.statusOverride !== undefined) status = x.ctx.statusOverride

    let headers: string[]
    ;({ status, headers } = filterResponseHead(x, peer, status, rawHeaders))
    x.responded = true
    this.resumeFn = resume
    x.res.writeHead(status, headers)
    this.direct = canWriteDirect(x.res)
    return true
  }

  /** `written`: the h1 client's read buffer may be reused once the client socket took the chunk. */
  onData (chunk: Buffer, written?: () => void): boolean {
    this.lastRead = performance.now()
    if (this.discarding) { written?.(); return true }
    const sink = this.sink
    if (sink !== null) {
      if (sink.write(chunk, written)) return true
      this.paused = true
      sink.once('drain', this.drained ??= this.onDrain.bind(this))
      return false
    }
    const res = this.x.res
    const more = res.write(chunk, written)
    // The first piece went with the head; the rest may skip ServerResponse (see canWriteDirect).
    if (this.direct) this.sink = res.socket
    if (more) return true
    // The client is not keeping up: pause the upstream until it drains (the listener is made on first need).
    this.paused = true
    res.once('drain', this.drained ??= this.onDrain.bind(this))
    return false
  }

  private onDrain (): void {
    this.paused = false
    this.lastRead = performance.now()
    ;(this.resumeFn as () => void)()
  }

  onComplete (): void {
    this.end()
    if (!this.discarding) this.x.res.end()
  }

  onError (err: Error, cachedConnection = false): void {
    if (this.done) return // ended on purpose (a retried status)
    this.end()
    if (this.discarding) return
    const x = this.x
    if (x.clientGone) return // the client left: nothing to answer, no failure to count (nginx's 499)
    const code = (err as { code?: string }).code
    if (code === 'UND_ERR_INVALID_ARG' || code === 'PROXYCTL_H1_INVALID_REQUEST') {
      // undici refused the request we built (a path not starting with "/", a bad header value):
      // our fault, not the peer's, so no failure is counted and no other peer is tried.
      x.log.error({ upstream: x.upstreamName, server: this.peer.address, reason: err.message }, `${err.message} while sending request to upstream`)
      x.finishWithError(undefined, 500)
      return
    }
    const error = classifyUpstreamError(err, this.sent ? 'reading' : 'connecting')
    this.peer.recordFailure(Date.now())
    // A kept-alive connection that failed before the response head: the server may only have
    // closed it as the request went out. nginx gives such a request one more try
    // (ngx_http_upstream_next: `u->peer.cached && ft_type == NGX_HTTP_UPSTREAM_FT_ERROR`).
    if (cachedConnection && error.kind === 'error') x.extraTries++
    x.failed(error, this.peer, this.sent)
  }

  /** Watches the request body: proxy_send_timeout (the upstream stopped taking it), and its end,
   * from which the read timeout counts (see readTimerFired). */
  watchSend (limit: number): void {
    const req = this.x.req
    req.once('end', () => { this.lastRead = performance.now() })
    if (limit <= 0) return
    let last = Date.now()
    let seen = this.x.ctx.socket.bytesRead
    this.sendTimer = setInterval(() => {
      const now = Date.now()
      const read = this.x.ctx.socket.bytesRead
      if (read !== seen || req.readableEnded) { seen = read; last = now; return }
      // Paused with data waiting: the upstream is not reading. Otherwise the client is slow.
      if (now - last >= limit && req.readableLength > 0) {
        clearInterval(this.sendTimer)
        this.sendTimer = undefined
        this.abort(new UpstreamError('PROXYCTL_UPSTREAM_TIMEOUT', 'timeout', 504, 'upstream timed out while sending request to upstream'))
      }
    }, Math.min(1000, Math.max(10, limit / 4)))
    this.sendTimer.unref()
  }
}
