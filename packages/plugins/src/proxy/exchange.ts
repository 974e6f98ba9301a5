import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { registerVariable, type RequestContext, type Template } from '@proxyctl/core'
import { ExchangeRecord, compressionFor, encoder, weakEtag, type ResolvedCompress, type UpstreamTry } from '@proxyctl/core/internal'
import { CARRIED_BY_ACCEL_REDIRECT, carryOntoList, absoluteLocation, addHeadersObject, carryOntoObject, errorPageFor, failRequest, followErrorPage, addToHeaderList, requestLine, sendErrorPage } from '@proxyctl/core/internal'
import type { UpstreamPeer, UpstreamPool } from '../upstream/pool.js'
import { classifyUpstreamError, UpstreamError } from './errors.js'
import { CompressingDownstream, ResponseDownstream, type Downstream, type SpoolOwner } from './downstream.js'
import { connectionTokens } from './headers.js'
import { upstreamPath, type NextUpstreamCase, type ProxyPlan } from './plan.js'
import { parseRenderedTarget } from './target.js'
import type { CacheRequest } from '../cache/request.js'
import { cacheRequestHeaders } from '../cache/upstream-headers.js'

/**
 * One client request's exchange with its upstream, the same for `proxy()` and `websocket()`
 * (byte tunnels and message mode), told as Pingora's phases:
 *
 *   target       the proxy target (rendered when it has variables), its pool, the upstream URI
 *   upstream_peer         pickPeer: the balancer's next server, not one tried already
 *   upstream_request      requestHead: method, path, headers, then the plugins' hooks
 *   (a leg moves the bytes: proxy's Attempt over the h1 client or undici, the tunnel's
 *    TunnelAttempt, message mode's ws client; legs only report what happened, here)
 *   response_filter       upstreamAnswered: nextUpstream on a status; responseHead: the head as
 *                         the client gets it, then the plugins' hooks
 *   fail_to_connect / error_while_proxy
 *                         attemptFailed: counted against the server once, logged once, hooks,
 *                         then the next server or the final 502/504
 *
 * A subclass says how an attempt goes out (`attemptOnce`) and may answer errors its own way.
 */
export abstract class UpstreamExchange implements SpoolOwner {
  readonly tried = new Set<UpstreamPeer>()
  readonly started = Date.now()
  readonly state: ProxyRequestState = { proxyHost: '' }
  /** The request's record: each try goes in it ($upstream_addr, $upstream_status, times). */
  readonly record: ExchangeRecord
  /** The try under way (pickPeer starts one). */
  currentTry: UpstreamTry | undefined
  readonly ctx: RequestContext
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly log: FastifyBaseLogger
  /** Where the upstream's answer goes (HTTP/1 through Node's response today; through zlib when compressed). */
  downstream: Downstream
  pool!: UpstreamPool
  path = ''
  upstreamName = ''
  proxyHost = ''
  attempts = 0
  /** Tries granted beyond the budget: one per kept-alive connection that failed before the head (nginx's u->peer.cached). */
  extraTries = 0
  /** Something (a head, an error page) went to the client: a later failure can only cut the connection. */
  responded = false
  clientGone = false
  /** The request has a body to send upstream (never for a tunnel). */
  hasBody = false
  /** The body was read whole first (requestBuffering), so it may be sent again to another server. */
  bodyBuffered = false
  /** Reading the client's body failed (too large, too slow): what the upstream leg reports after that is not the server's doing. */
  bodyFailed = false
  /** The upstream's X-Accel-Buffering (yes: true, no: false) on the answer passed on; undefined: none. */
  accelBuffering: boolean | undefined
  /** The request's dealings with the location's cache (proxy_cache); undefined: none. */
  cache: CacheRequest | undefined
  /** Said after each failure in the log, e.g. " (websocket handshake)". */
  protected readonly logSuffix: string = ''

  constructor (readonly plan: ProxyPlan, readonly request: FastifyRequest, readonly reply: FastifyReply) {
    this.ctx = request.proxyctl
    this.req = request.raw
    this.res = reply.raw
    this.log = request.log
    this.downstream = new ResponseDownstream(this.res, this)
    this.ctx.locals[kProxyState] = this.state
    this.record = this.ctx.record ?? recordFor(this.ctx)
  }

  /**
   * nginx's error log context for this request's lines: the client, the virtual server
   * (`serverName`), the request line, the Host; the text form ends each message.
   */
  context (): { fields: { client: string, serverName: string, request: string, host: string }, text: string } {
    const ctx = this.ctx
    const fields = { client: ctx.socket.remoteAddress ?? 'unix:', serverName: ctx.server.primaryName, request: requestLine(this.req, ctx.requestUri), host: ctx.host }
    return { fields, text: `, client: ${fields.client}, server: ${fields.serverName}, request: "${fields.request}", host: "${fields.host}"` }
  }

  /** Sends one attempt at `peer` (after pickPeer and requestHead). */
  protected abstract attemptOnce (): void

  /**
   * The target phase, then the first attempt (once a rendered target's pool has started). False
   * when the target cannot be rendered: answered 500.
   */
  begin (): boolean {
    const plan = this.plan
    const ctx = this.ctx
    let target = plan.target
    let renderedUri: string | undefined
    if (target === undefined) {
      try {
        target = parseRenderedTarget((plan.targetTemplate as Template).render(ctx), plan.upstreamNames)
      } catch (err) {
        const c = this.context()
        this.log.error({ code: 'PROXYCTL_PROXY_TARGET_INVALID', reason: (err as Error).message, ...c.fields }, `${(err as Error).message}${c.text}`)
        this.finishWithError(undefined, 500)
        return false
      }
      renderedUri = target.uriPart
    }
    this.pool = plan.pool ?? plan.poolFor(target)
    this.upstreamName = target.address.type === 'upstream' ? target.address.name : target.peer
    this.proxyHost = this.state.proxyHost = target.proxyHost
    this.path = upstreamPath(plan, ctx, renderedUri)
    return true
  }

  /** The first attempt, once the pool is ready (pools of rendered targets start on first use). */
  protected firstAttempt (): void {
    if (this.plan.pool !== undefined) { this.attempt(); return }
    this.pool.log ??= this.log
    this.pool.start().then(() => this.attempt(), (err: unknown) => this.finishWithError(classifyUpstreamError(err, 'connecting')))
  }

  /** One try at one server; a throw on the way (a hook, a bug) is this request's 500, not the process's end. */
  attempt (): void {
    try {
      this.attemptOnce()
    } catch (err) {
      this.internalError(err)
    }
  }

  /**
   * upstream_peer: the next server for this request (balancer, health, tries), counted in
   * `$upstream_addr`; or null, after logging nginx's "no live upstreams" and answering 502.
   */
  pickPeer (): UpstreamPeer | null {
    const sel = this.pool.pick({
      key: this.plan.hashKey?.render(this.ctx),
      clientAddress: this.ctx.socket.remoteAddress,
      tried: this.tried as Set<never>,
      request: this.ctx
    }, Date.now())
    if (sel.peer === null) {
      const c = this.context()
      this.log.error({ code: sel.reason.code, upstream: this.upstreamName, reason: sel.reason.message, counts: sel.reason.counts, err: sel.reason.error, ...c.fields },
        `${sel.reason.message} while connecting to upstream${c.text}, upstream: "${this.upstreamName}"`)
      if (!this.answerInstead('noLive')) this.finishWithError(undefined, 502)
      return null
    }
    const peer = sel.peer as UpstreamPeer
    this.attempts++
    this.currentTry = this.record.beginTry(peer.address, performance.now(), peer.meter)
    return peer
  }

  /** upstream_request: method, path and headers for `peer`, after the plugins' hooks. */
  requestHead (peer: UpstreamPeer, withoutBody = false): { method: string, path: string, headers: string[] } {
    const cache = this.cache
    const head = {
      method: cache === undefined ? this.req.method ?? 'GET' : cache.upstreamMethod(this.req.method ?? 'GET'),
      path: this.path,
      headers: this.plan.requestHeaders.build(this.ctx, this.req, this.proxyHost, withoutBody),
      peer: peer.address,
      upstream: this.upstreamName
    }
    if (cache !== undefined) cacheRequestHeaders(head.headers, cache)
    for (const hook of this.plan.hooks.upstreamRequest) hook(this.ctx, head)
    return head
  }

  /**
   * The upstream answered `status` (not 101): noted in `$upstream_status`. True when
   * nextUpstream retries it: the server is counted as failed (except for 403 and 404, as nginx)
   * and the caller drops this attempt and calls `attempt()`. Otherwise the server's success is
   * noted and the answer goes on to the client.
   */
  upstreamAnswered (peer: UpstreamPeer, status: number): boolean {
    this.noteStatus(status)
    if (this.plan.nextStatuses.has(status) && this.canRetry(`http_${status}` as NextUpstreamCase, true)) {
      if (status !== 403 && status !== 404) peer.recordFailure(Date.now())
      return true
    }
    peer.recordSuccess()
    return false
  }

  noteStatus (status: number): void {
    const t = this.currentTry
    if (t === undefined) return
    t.status = status
    t.header = performance.now() - t.start
  }

  /**
   * nginx's X-Accel-Redirect (unless ignoreHeaders names it): the value of the upstream's first
   * X-Accel-Redirect and the headers that go on with the request to that target (core's
   * carried-headers.ts says which); undefined when the answer has none. Looked for before
   * response_filter: a redirected answer never goes to the client, so its hooks do not run.
   */
  accelRedirect (rawHeaders: ReadonlyArray<Buffer | string>): { value: string, carried: Array<[string, string]> } | undefined {
    if (!this.plan.accelRedirect) return undefined
    let value: string | undefined
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const n = rawHeaders[i] as Buffer | string
      if (n.length === 16 && latin1(n).toLowerCase() === 'x-accel-redirect') { value = latin1(rawHeaders[i + 1] as Buffer | string); break }
    }
    if (value === undefined) return undefined
    const carried: Array<[string, string]> = []
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = latin1(rawHeaders[i] as Buffer | string)
      if (CARRIED_BY_ACCEL_REDIRECT.has(name.toLowerCase())) carried.push([name, latin1(rawHeaders[i + 1] as Buffer | string)])
    }
    return { value, carried }
  }

  /**
   * response_filter: the upstream's head as the client gets it. Hop-by-hop headers and those the
   * upstream's Connection names are dropped, hidden ones too, Location and Refresh are rewritten
   * (proxy_redirect), then the plugins' upstreamResponse hooks run.
   */
  responseHead (peer: UpstreamPeer | undefined, status: number, rawHeaders: ReadonlyArray<Buffer | string>): { status: number, headers: string[] } {
    const plan = this.plan
    let named: Set<string> | undefined
    this.accelBuffering = undefined
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const n = rawHeaders[i] as Buffer | string
      if (n.length === 10 && latin1(n).toLowerCase() === 'connection') {
        // Almost always "keep-alive" or "close", which name no other header: skip the parse.
        const v = latin1(rawHeaders[i + 1] as Buffer | string)
        if (v !== 'keep-alive' && v !== 'close') named = connectionTokens(v)
      } else if (n.length === 17 && plan.accelBuffering && latin1(n).toLowerCase() === 'x-accel-buffering') {
        // nginx's ngx_http_upstream_process_buffering: exactly yes or no, any case; hidden from the client.
        const v = latin1(rawHeaders[i + 1] as Buffer | string).toLowerCase()
        if (v === 'yes' || v === 'no') this.accelBuffering = v === 'yes'
      }
    }
    // A cached answer (peer undefined) has no server: hooks see peer ''.
    const head = { status, headers: [] as string[], peer: peer?.address ?? '', upstream: this.upstreamName }
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = latin1(rawHeaders[i] as Buffer | string)
      const lower = name.toLowerCase()
      if (!plan.responseHeaders.keep(lower, named)) continue
      let value = latin1(rawHeaders[i + 1] as Buffer | string)
      if (plan.redirect !== null && (lower === 'location' || lower === 'refresh')) {
        const rewritten = plan.redirect(value, this.ctx, lower)
        if (rewritten !== undefined) value = lower === 'location' ? absoluteLocation(rewritten, this.ctx) : rewritten
      }
      head.headers.push(name, value)
    }
    for (const hook of plan.hooks.upstreamResponse) hook(this.ctx, head)
    // An earlier upstream's X-Accel-Redirect led here: what it carried goes on this answer too.
    if (this.ctx.carried !== undefined) carryOntoList(this.ctx.carried, 'proxied', head.headers)
    return head
  }

  /** add_header on a head going to the client: after the upstream's own headers (which stay) and the plugins' hooks. */
  addHeaders (status: number, headers: string[]): void {
    const list = this.plan.addHeaders
    if (list !== undefined) addToHeaderList(list, this.ctx, status, headers)
  }

  /**
   * nginx's gzip filter on the head going to the client (`headers` changed in place: Vary,
   * Content-Encoding, no Content-Length or Accept-Ranges, a weak ETag); the body then goes
   * through zlib. An upstream's encoded answer passes as is.
   */
  compressAnswer (c: ResolvedCompress, status: number, headers: string[]): void {
    const header = (name: string): string | undefined => {
      for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === name) return headers[i + 1]
      return undefined
    }
    const coding = compressionFor(c, this.req, { status, header })
    if (coding === undefined) return
    if (c.vary) headers.push('Vary', 'Accept-Encoding')
    if (coding === 'identity') return
    for (let i = 0; i < headers.length; i += 2) {
      const lower = (headers[i] as string).toLowerCase()
      if (lower === 'content-length' || lower === 'accept-ranges') { headers.splice(i, 2); i -= 2 } else if (lower === 'etag') {
        const weak = weakEtag(headers[i + 1] as string)
        if (weak === undefined) { headers.splice(i, 2); i -= 2 } else headers[i + 1] = weak
      }
    }
    headers.push('Content-Encoding', coding)
    if (this.req.method === 'HEAD') return
    const z = encoder(coding, c.level)
    const res = this.res
    res.once('close', () => { z.destroy() })
    z.once('error', () => { res.destroy() })
    this.downstream = new CompressingDownstream(this.downstream, z)
  }

  /** proxyctl's own error page (502, 504, 500...), with the addHeaders that apply to it. */
  sendOwnErrorPage (status: number): void {
    sendErrorPage(this.res, status, carryOntoObject(this.ctx.carried, addHeadersObject(this.plan.addHeaders, this.ctx, status)))
  }

  /** How many servers a request may try: as nginx, the group's tries, lowered (never raised) by `nextUpstream.tries`. */
  tryBudget (): number {
    const groupTries = this.pool.group.tries
    return this.plan.tries > 0 && this.plan.tries < groupTries ? this.plan.tries : groupTries
  }

  /** nginx's conditions for trying the next server (ngx_http_upstream_next). `sent`: the request went out. */
  canRetry (kind: NextUpstreamCase, sent: boolean): boolean {
    const plan = this.plan
    if (this.clientGone || !plan.next.has(kind)) return false
    if (this.attempts >= this.tryBudget() + this.extraTries) return false
    if (plan.tryTimeout > 0 && Date.now() - this.started >= plan.tryTimeout) return false
    // A body streamed (requestBuffering false) cannot be sent again once it started.
    if (this.hasBody && !this.bodyBuffered && this.req.readableDidRead) return false
    if (sent && NON_IDEMPOTENT.has(this.req.method ?? 'GET') && !plan.next.has('non_idempotent')) return false
    return true
  }

  /**
   * fail_to_connect / error_while_proxy: an attempt at `peer` failed (`err` as its leg got it).
   * The one place a server is counted as failed: then the log line, the upstreamError hooks, and
   * the next server or the final answer. `cachedConnection`: the attempt ran on a kept-alive
   * connection that failed before the response head, which nginx tries once more.
   */
  attemptFailed (err: unknown, peer: UpstreamPeer, sent: boolean, cachedConnection = false): void {
    // The client left (nginx's 499), or its body was refused (and answered) meanwhile: nothing to answer, no failure to count.
    if (this.clientGone || this.bodyFailed) return
    const error = classifyUpstreamError(err, sent ? 'reading' : 'connecting')
    if (error.code === 'PROXYCTL_UPSTREAM_REQUEST_INVALID') {
      // The request we built was refused before it left (a bad header value, a path undici
      // refuses): our fault, not the server's, so no failure is counted and no other server tried.
      const c = this.context()
      this.log.error({ code: error.code, upstream: this.upstreamName, server: peer.address, reason: error.message, ...c.fields },
        `${error.message} while sending request to upstream${this.logSuffix}${c.text}, upstream: "${this.upstreamName}", server: ${peer.address}`)
      this.finishWithError(undefined, 500)
      return
    }
    peer.recordFailure(Date.now())
    // nginx notes a failed try as the status it would answer (502, 504).
    if (this.currentTry !== undefined && this.currentTry.status === 0) this.currentTry.status = error.status
    if (cachedConnection && error.kind === 'error') this.extraTries++
    const c = this.context()
    this.log.error({ code: error.code, upstream: this.upstreamName, server: peer.address, reason: error.message, ...c.fields },
      `${error.message}${this.logSuffix}${c.text}, upstream: "${this.upstreamName}", server: ${peer.address}`)
    for (const hook of this.plan.hooks.upstreamError) hook(this.ctx, { peer: peer.address, upstream: this.upstreamName, code: error.code, reason: error.message })
    if (this.responded) {
      // Headers are out: the client can only learn of it by a cut connection.
      this.res.destroy(error)
      return
    }
    if (this.canRetry(error.kind, sent)) { this.attempt(); return }
    if (this.answerInstead(error.kind)) return
    this.finishWithError(error)
  }

  /**
   * The last try failed with `kind` ('error', 'timeout', 'noLive', 'http_502'...): true when
   * something else answered instead of the error (the proxy cache's stale entry).
   */
  answerInstead (_kind: string): boolean {
    return false
  }

  /**
   * The final error answer: nginx's page for `status` (502, 504, 500), through the location's
   * errorPages (nginx's own 502/504 go through error_page; proxy_intercept_errors is only for
   * upstream answers). A request body not read to its end closes the connection after it.
   */
  finishWithError (error: UpstreamError | undefined, status = error?.status ?? 502): void {
    if (this.clientGone) return
    this.responded = true
    if (this.hasBody && !this.req.readableEnded) {
      this.res.setHeader('connection', 'close')
      // Node detaches req.socket once the response is done: hold on to it now.
      const socket = this.ctx.socket
      this.res.once('finish', () => socket?.destroySoon())
    }
    const rule = errorPageFor(this.ctx, status)
    if (rule !== undefined) { followErrorPage(this.request, this.reply, rule, status); return }
    this.sendOwnErrorPage(status)
  }

  /**
   * A buffered response's temp file could not be opened, written or read: the client already has
   * the head and part of the body (the spool starts once the client falls behind), so, as nginx,
   * its connection is cut (by the downstream); one error line.
   */
  spoolFailed (err: NodeJS.ErrnoException, path: string): void {
    const c = this.context()
    this.log.error({ code: 'PROXYCTL_TEMP_FILE_FAILED', path, errno: err.code, tempPath: this.plan.spool.dir, upstream: this.upstreamName, ...c.fields },
      `temp file "${path}" failed (${err.code ?? ''}: ${err.message}) while buffering the upstream response${c.text}, upstream: "${this.upstreamName}"`)
  }

  /**
   * A bug (a phase hook or proxyctl itself threw) while the exchange was under way: 500 and close,
   * one error line, never the process. The caller has ended its attempt first, so the server is
   * not blamed.
   */
  internalError (err: unknown): void {
    if (this.clientGone) return
    this.responded = true
    failRequest(this.log, this.req, this.res, this.ctx.requestUri, err)
  }
}

/** What nginx does not send to the next server once sent, without non_idempotent (ngx_http_upstream_next). */
const NON_IDEMPOTENT = new Set(['POST', 'LOCK', 'PATCH'])

const kProxyState = Symbol.for('proxyctl.proxy.request')

/** What `$proxy_host` reads (`$upstream_*` read the request's record: core's variables). */
export interface ProxyRequestState { proxyHost: string }

/** `$proxy_host` for a request no exchange runs (explain): the target's host. */
export function noteProxyHost (ctx: RequestContext, proxyHost: string): void {
  ctx.locals[kProxyState] ??= { proxyHost } satisfies ProxyRequestState
}

function stateOf (ctx: RequestContext): ProxyRequestState | undefined {
  return ctx.locals[kProxyState] as ProxyRequestState | undefined
}

/** A request that reached no listener (an app driven by hand) gets its record here. */
function recordFor (ctx: RequestContext): ExchangeRecord {
  const r = new ExchangeRecord(ctx.socket, ctx.req, ctx.requestUri, 0)
  r.ctx = ctx
  ctx.record = r
  return r
}
registerVariable('proxy_host', (c) => stateOf(c)?.proxyHost ?? '')

/** A raw header name or value as a string (undici gives Buffers, some paths strings). */
export function latin1 (v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1')
}
