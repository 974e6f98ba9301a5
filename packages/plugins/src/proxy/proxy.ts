import { ServerResponse, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { Writable, type Readable } from 'node:stream'
import { performance } from 'node:perf_hooks'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import { defineHandler, type CompiledHandler, type HandlerCompileEnv, type LocationHandler, type RequestBodyError } from '@proxyctl/core'
import { addHeadersObject, ExchangeRecord, errorPageFor, failRequest, followAccelRedirect, followErrorPage, phaseHooks, recordOf, requestLine, sendErrorPage } from '@proxyctl/core/internal'
import type { UpstreamPeer } from '../upstream/pool.js'
import type { H1Handler } from '../upstream/h1/connection.js'
import { UpstreamError } from './errors.js'
import { UpstreamAttempt } from './attempt.js'
import { UpstreamExchange } from './exchange.js'
import { compilePlan, directPools, type ProxyOptions, type ProxyPlan } from './plan.js'
import { BufferedBody, CountedBody, type BodyLimits } from './request-body.js'
import { explainProxy } from './explain.js'
import { latin1 } from './exchange.js'
import { CacheRequest, type CacheStatus } from '../cache/request.js'
import { CapturingDownstream, withBody } from '../cache/capture.js'
import { notModified } from '../cache/not-modified.js'
import { multipartBody, rangeFor, SlicingDownstream } from '../cache/ranges.js'
import type { CacheEntry } from '../cache/store.js'

export type { IgnorableHeader, NextUpstreamCase, ProxyOptions, ProxyPlan } from './plan.js'

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
      await plan.cache?.zone.open(instance.log)
      // A pool a reload handed to the new config is the new app's to close.
      instance.addHook('onClose', async () => {
        if (plan.pool !== undefined && !env.handedOver(plan.pool)) await plan.pool.close()
        for (const p of directPools(env).values()) if (!env.handedOver(p)) await p.close()
        await plan.cache?.zone.close()
      })
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
    explain: (ctx) => explainProxy(plan, ctx, 'proxy', false),
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

/**
 * proxy_cache_background_update: the same exchange as a client's, answering into a response no
 * client reads (its bytes are dropped), with a record of its own (the client's log line is the
 * client's answer). Whatever ends it lets go of the key.
 */
function backgroundUpdate (plan: ProxyPlan, request: FastifyRequest, bg: CacheRequest): void {
  const req = request.raw
  const res = new ServerResponse(req)
  const sink = new Writable({ write (_chunk, _enc, cb) { cb() } })
  res.assignSocket(sink as unknown as Socket)
  res.once('finish', () => { bg.done(); res.emit('close') })
  try {
    const x = new ProxyExchange(plan, request, { raw: res, hijack () {} } as unknown as FastifyReply)
    ;(x as { record: ExchangeRecord }).record = new ExchangeRecord(request.proxyctl.socket, req, request.proxyctl.requestUri, 0)
    x.cache = bg
    if (x.begin()) x.toUpstream()
  } catch (err) {
    bg.done()
    request.log.error({ err }, 'cache background update failed')
  }
}

/** Request bodies read whole, for a later location of the same request (an error page). */
const bodiesRead = new WeakMap<IncomingMessage, BufferedBody>()

/**
 * One client request through the proxy (exchange.ts tells the phases): the request body, when
 * there is one, is read whole first (request-body.ts; requestBuffering) or streams to the chosen
 * server; the answer streams back through the Attempt.
 */
class ProxyExchange extends UpstreamExchange {
  /** A body another location already read (an error page after a proxied POST) is gone. */
  readonly bodyGone: boolean
  /** The attempt in flight; callbacks of an older one are ignored. */
  current: Attempt | undefined
  /** An exchange on the same connection still answering when this one began (pipelining). */
  pipelinedAfter: ProxyExchange | undefined
  /** The request body, read whole (requestBuffering). */
  body: BufferedBody | undefined
  /** The request body on its way through (requestBuffering false). */
  counted: CountedBody | undefined

  constructor (plan: ProxyPlan, request: FastifyRequest, reply: FastifyReply) {
    super(plan, request, reply)
    const req = this.req
    const h = req.headers
    // Another location read the body (an error page after a proxied POST): nginx sends it again
    // with the GET when it was read whole; a streamed one is gone, and none is sent.
    const earlier = req.readableDidRead ? bodiesRead.get(req) : undefined
    if (earlier !== undefined) { this.body = earlier; this.bodyBuffered = true }
    this.bodyGone = req.readableDidRead && earlier === undefined
    this.hasBody = !this.bodyGone && ((h['content-length'] !== undefined && h['content-length'] !== '0') || h['transfer-encoding'] !== undefined)
  }

  start (): void {
    if (!this.begin()) return
    watchClient(this)
    const plan = this.plan.cache
    if (plan !== undefined && plan.purge.length > 0) {
      const c = new CacheRequest(plan, this.ctx, this.req)
      if (c.isPurge()) { this.purge(c); return }
    }
    if (plan !== undefined && plan.methods.has(this.req.method ?? 'GET')) {
      // proxy_cache: the lookup comes first; a HIT answers without the upstream.
      const c = this.cache = new CacheRequest(plan, this.ctx, this.req)
      this.res.once('close', () => { c.abandon(); plan.zone.count(this.record.cacheStatus) })
      c.lookup({
        hit: (entry, status) => { this.answerFromCache(entry, status) },
        miss: () => { this.record.cacheStatus = c.status; this.toUpstream() },
        background: (bg) => { backgroundUpdate(this.plan, this.request, bg) }
      })
      return
    }
    this.toUpstream()
  }

  /** The request goes upstream: its body first when buffered, then the first attempt. */
  toUpstream (): void {
    if (this.clientGone) return
    if (this.hasBody && this.plan.requestBuffering && this.body === undefined) { this.readBody(); return }
    this.firstAttempt()
  }

  /** proxy_request_buffering on: the whole body first, then the upstream. */
  private readBody (): void {
    const body = new BufferedBody(this.req, bodyLimits(this), (err) => {
      if (err !== undefined) { this.refuseBody(err); return }
      bodiesRead.set(this.req, body)
      if (!this.clientGone) this.firstAttempt()
    })
    this.body = body
    this.bodyBuffered = true
    // Whatever ends the answer (sent, cut, the client gone, shutdown) lets go of the body and its temp file.
    this.res.once('close', () => { body.dispose() })
  }

  /**
   * Reading the body failed: one log line; then nginx's answer. clientBodyTimeout closes the
   * connection without one (nginx logs 408 and sends nothing); too large is a 413 (through
   * errorPages), a temp file that cannot be written a 500, each closing the connection after it.
   * An upstream request under way (a streamed body) is aborted.
   */
  refuseBody (err: RequestBodyError): void {
    if (this.bodyFailed || this.clientGone) return
    this.bodyFailed = true
    const client = this.ctx.socket.remoteAddress
    const line = requestLine(this.req, this.ctx.requestUri)
    const fields = { code: err.code, client, request: line, ...err.limitFields(), ...(err.cause !== undefined ? { err: err.cause } : {}) }
    const msg = `${err.message}, client: ${client ?? '-'}, request: "${line}"`
    if (err.status === 500) this.log.error(fields, msg); else this.log.info(fields, msg)
    if (err.limit !== undefined) this.plan.bodyRejections[err.limit]?.inc()
    this.current?.abort()
    if (err.status === 408) {
      // The access line says 408, as nginx's, though nothing is sent (else it would read 499).
      const record = recordOf(this.res)
      if (record !== undefined) record.loggedStatus = 408
      this.clientGone = true
      this.ctx.socket.destroy()
      return
    }
    if (this.responded) { this.res.destroy(); return }
    this.finishWithError(undefined, err.status)
  }

  /**
   * A cached entry answers (HIT, UPDATING, STALE, REVALIDATED): its upstream head goes through the
   * same header rules as a fresh one (hidden headers, proxy_redirect, hooks, addHeaders,
   * compression), then its body.
   */
  answerFromCache (entry: CacheEntry, status: CacheStatus): void {
    this.record.cacheStatus = status
    if (this.clientGone || this.responded) return
    const head = this.responseHead(undefined, entry.status, entry.headers)
    const cond = notModified(this.ctx, this.req, head.status, head.headers)
    if (cond === 412) { this.responded = true; this.sendOwnErrorPage(412); return }
    head.status = cond
    let body = entry.body
    const range = rangeFor(this.ctx, this.req, head.status, head.headers, body.length, true)
    if (range === 'unsatisfiable') { this.responded = true; this.sendRangeNotSatisfiable(body.length); return }
    if (range !== undefined) { head.status = 206; body = 'multipart' in range ? multipartBody(body, range.multipart) : body.subarray(range.start, range.end) }
    if (this.plan.addHeaders !== undefined) this.addHeaders(head.status, head.headers)
    const compress = (this.ctx.location ?? this.ctx.server).compress
    if (compress !== undefined) this.compressAnswer(compress, head.status, head.headers)
    this.responded = true
    const downstream = this.downstream
    downstream.head(head.status, head.headers, head.status === entry.status ? entry.reason : undefined)
    if (body.length > 0 && this.req.method !== 'HEAD') downstream.write(body)
    downstream.end()
  }

  /** proxy_cache_purge: the entry goes; 204, or 404 when there was none. */
  private purge (c: CacheRequest): void {
    this.responded = true
    c.purge().then((removed) => {
      if (this.clientGone) return
      if (removed) { this.res.writeHead(204, addHeadersObject(this.plan.addHeaders, this.ctx, 204)); this.res.end() } else this.sendOwnErrorPage(404)
    }, (err: unknown) => { this.internalError(err) })
  }

  /** nginx's 416 for a range past the end: its page, with `Content-Range: bytes *\/SIZE`. */
  sendRangeNotSatisfiable (size: number): void {
    sendErrorPage(this.res, 416, { ...addHeadersObject(this.plan.addHeaders, this.ctx, 416), 'Content-Range': `bytes */${size}` })
  }

  /** useStale: the stale entry answers instead of the upstream's failure. */
  override answerInstead (kind: string): boolean {
    const c = this.cache
    const entry = c?.staleFor(kind)
    if (c === undefined || entry === undefined) return false
    c.done()
    this.answerFromCache(entry, 'STALE')
    return true
  }

  /** The client's connection closed: if this exchange was still answering, stop its upstream request. */
  clientClosed (): void {
    if (this.res.writableFinished) return
    this.clientGone = true
    this.current?.abort()
  }

  /** What goes upstream as the body: the buffered one (again, on a retry), or the client's, counted on its way. */
  private bodyToSend (): Buffer | Readable {
    if (this.body !== undefined) return this.body.payload()
    if (this.counted === undefined || this.counted.destroyed) {
      this.counted = new CountedBody(this.req, bodyLimits(this), (err) => { this.refuseBody(err) })
    }
    return this.counted
  }

  /** upstream_peer, upstream_request, then the request goes out on the peer's client. */
  protected attemptOnce (): void {
    const peer = this.pickPeer()
    if (peer === null) return
    const plan = this.plan
    const { method, path, headers } = this.requestHead(peer, this.bodyGone)
    const attempt = new Attempt(this, peer)
    this.current = attempt
    const inMemory = this.body?.inMemory
    if (peer.h1 !== undefined && (!this.hasBody || inMemory !== undefined)) {
      // The hot path: proxyctl's own HTTP/1.1 client reads into reused buffers and hands body
      // pieces over without a copy (upstream/h1/); a body buffered in memory goes with the head,
      // with its length (a chunked one too, as nginx sends it).
      // Streamed and spilled bodies, TLS and upgrades stay on undici.
      peer.h1.dispatch(inMemory === undefined ? { method, path: wirePath(path), headers } : { method, path: wirePath(path), headers, body: inMemory }, attempt)
      return
    }
    const body = this.hasBody ? this.bodyToSend() : null
    // A buffered chunked body goes with its length, as nginx sends it (Transfer-Encoding is hop-by-hop).
    if (this.body !== undefined && this.req.headers['content-length'] === undefined) headers.push('Content-Length', String(this.body.length))
    if (body !== null && this.body === undefined) attempt.watchSend(plan.sendTimeout)
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
}

/** The limits of the location answering now (an error page's location may differ from the first). */
function bodyLimits (x: ProxyExchange): BodyLimits {
  const l = (x.ctx.location ?? x.ctx.server).limits
  return { maxSize: l.clientMaxBodySize, bufferSize: l.clientBodyBufferSize, timeout: l.clientBodyTimeout, tempPath: x.plan.tempPath }
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

/** One try at one peer over the h1 client or undici; the dispatch handler of that try (attempt.ts keeps readTimeout). */
class Attempt extends UpstreamAttempt implements Dispatcher.DispatchHandler, H1Handler {
  private sent = false
  private sendTimer: NodeJS.Timeout | undefined
  private resumeFn: (() => void) | undefined
  private drained: (() => void) | undefined
  /** The upstream's answer went to an error page or its X-Accel-Redirect: its body is read and dropped. */
  private discarding = false
  /** Bytes of a dropped body read so far. */
  private dropped = 0

  constructor (private readonly x: ProxyExchange, peer: UpstreamPeer) {
    super(x, peer)
  }

  protected override end (): boolean {
    if (this.sendTimer !== undefined) clearInterval(this.sendTimer)
    return super.end()
  }

  onConnect (abort: (err?: Error) => void): void {
    this.sent = true
    this.connected(abort)
  }

  // While the client still sends its body the upstream owes nothing (nginx arms
  // proxy_read_timeout once the request is sent); the body's end (watchSend) restarts the count.
  protected override owesNothing (): boolean {
    return this.x.hasBody && !this.x.req.readableEnded
  }

  onHeaders (status: number, rawHeaders: Array<Buffer | string>, resume: () => void, statusText?: string): boolean {
    try {
      return this.head(status, rawHeaders, resume, statusText)
    } catch (err) {
      // A response hook threw (inside the upstream client's read): drop this upstream request
      // without counting it against the server, and answer 500.
      this.end()
      this.abortFn?.()
      this.x.internalError(err)
      return false
    }
  }

  private head (status: number, rawHeaders: Array<Buffer | string>, resume: () => void, statusText: string | undefined): boolean {
    this.lastRead = performance.now()
    if (status < 200) return true // 100 Continue: the client got ours already
    this.headersSeen = true
    const x = this.x
    const plan = x.plan
    const peer = this.peer
    if (x.upstreamAnswered(peer, status)) {
      this.end()
      this.abortFn?.()
      x.attempt()
      return false
    }
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
    const cache = x.cache
    let keep: Omit<CacheEntry, 'body'> | undefined
    if (cache !== undefined) {
      const raw = rawHeaders.map(latin1)
      // A revalidated entry (304 to our conditions), or a stale one for a failing status: the upstream's body is read and dropped.
      const answer = status === 304 && cache.stale !== undefined && cache.plan.revalidate
        ? { entry: cache.revalidated(raw), as: 'REVALIDATED' as const }
        : { entry: cache.staleFor(`http_${status}`), as: 'STALE' as const }
      if (answer.entry !== undefined) {
        cache.done()
        this.discarding = true
        x.answerFromCache(answer.entry, answer.as)
        return true
      }
    }
    // After nextUpstream and interceptErrors, whatever the status, as nginx (an answer followed so is not stored).
    const accel = x.accelRedirect(rawHeaders)
    if (accel !== undefined) {
      cache?.done()
      this.discarding = true
      process.nextTick(followAccelRedirect, x.request, x.reply, accel.value, accel.carried)
      return true
    }
    if (cache !== undefined) {
      const raw = rawHeaders.map(latin1)
      keep = cache.entryFor(status, statusText ?? '', raw)
      if (keep === undefined) cache.done()
    }
    const upstreamStatus = status
    if (x.ctx.statusOverride !== undefined) status = x.ctx.statusOverride

    let headers: string[]
    ;({ status, headers } = x.responseHead(peer, status, rawHeaders))
    // The upstream's reason phrase goes with its own status only.
    if (status !== upstreamStatus) statusText = undefined
    if (keep !== undefined) {
      // The client's conditions are the cache's to answer (the upstream got none of them).
      const cond = notModified(x.ctx, x.req, status, headers)
      if (cond === 412) { (cache as CacheRequest).done(); this.discarding = true; x.responded = true; x.sendOwnErrorPage(412); return true }
      if (cond !== status) { status = cond; statusText = undefined }
      const declared = Number(headerOf(headers, 'content-length') ?? NaN)
      const length = Number.isSafeInteger(declared) ? declared : undefined
      const range = rangeFor(x.ctx, x.req, status, headers, length, false)
      // nginx answers 416 and stores nothing: the upstream's answer is read and dropped.
      if (range === 'unsatisfiable') { (cache as CacheRequest).done(); this.discarding = true; x.responded = true; x.sendRangeNotSatisfiable(length as number); return true }
      if (range !== undefined && 'start' in range) {
        status = 206
        statusText = undefined
        x.downstream = new SlicingDownstream(x.downstream, range.start, range.end)
      }
    }
    if (plan.addHeaders !== undefined) x.addHeaders(status, headers)
    const compress = (x.ctx.location ?? x.ctx.server).compress
    if (compress !== undefined) x.compressAnswer(compress, status, headers)
    if (keep !== undefined) {
      // Outermost, so the entry holds the upstream's bytes (before compression).
      const c = cache as CacheRequest
      const head = keep
      x.downstream = new CapturingDownstream(x.downstream, c.plan.zone.config.maxEntrySize, (body) => { c.store(withBody(head, body)) }, () => { c.done() })
    }
    x.responded = true
    this.resumeFn = resume
    x.downstream.buffer((x.accelBuffering ?? plan.buffering) ? plan.spool : null)
    x.downstream.head(status, headers, statusText)
    return true
  }

  /** `written`: the h1 client's read buffer may be reused once the client socket took the chunk. */
  onData (chunk: Buffer, written?: () => void): boolean {
    this.lastRead = performance.now()
    if (this.discarding) {
      written?.()
      // A small dropped body is read to its end, so the connection is kept; a bigger one costs
      // the connection instead of the time to read it (nginx keeps it only for an answer without
      // a body). Not while the client's body streams up: the abort would destroy it.
      if ((this.dropped += chunk.length) > this.x.plan.spool.memory && this.x.counted === undefined) { this.end(); this.abortFn?.() }
      return true
    }
    const downstream = this.x.downstream
    if (downstream.write(chunk, written)) return true
    // The client is not keeping up: pause the upstream until it drains (the listener is made on first need).
    this.paused = true
    downstream.onceDrained(this.drained ??= this.onDrain.bind(this))
    return false
  }

  private onDrain (): void {
    this.paused = false
    this.lastRead = performance.now()
    ;(this.resumeFn as () => void)()
  }

  onComplete (): void {
    this.end()
    if (!this.discarding) this.x.downstream.end()
  }

  onError (err: Error, cachedConnection = false): void {
    if (this.done) return // ended on purpose (a retried status)
    this.end()
    if (this.discarding) return
    // A kept-alive connection that failed before the response head: the server may only have
    // closed it as the request went out (nginx's extra try; exchange.ts counts it).
    this.x.attemptFailed(err, this.peer, this.sent, cachedConnection)
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

/** A header's value in a flat list (name, value, ...), any case. */
function headerOf (headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === name) return headers[i + 1]
  return undefined
}
