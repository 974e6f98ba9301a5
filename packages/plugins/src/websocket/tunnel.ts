import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import {
  defineHandler, failConnection, failRequest, sendErrorPage, upgradeOf,
  type LocationHandler, type RequestContext, type Template, type UpgradeConnection
} from '@proxyctl/core'
import { compileProxy, filterResponseHead, latin1, pickPeer, tryBudget, upstreamRequestHead, wirePath, type NextUpstreamCase, type ProxyOptions, type ProxyPlan } from '../proxy/proxy.js'
import { classifyUpstreamError, UpstreamError } from '../proxy/errors.js'
import { parseRenderedTarget } from '../proxy/target.js'
import type { UpstreamPeer, UpstreamPool } from '../upstream/pool.js'
import type { MessageMode, UpstreamHandshake } from './messages.js'
import type { MessageModeOption } from './message-hooks.js'

/**
 * WebSocket tunnels, as nginx proxies an upgrade with
 *
 *   proxy_http_version 1.1;
 *   proxy_set_header Upgrade $http_upgrade;
 *   proxy_set_header Connection "upgrade";
 *
 * `websocket('http://ws')` (any `proxy()` target: a named upstream, a URL, `http://unix:/path:`)
 * sends an Upgrade request to the location's upstream with the proxy's header rules (setHeaders,
 * X-Forwarded-*, Host = `$proxy_host`; the client's Origin, Sec-WebSocket-*, cookies and auth go
 * as sent), trying the next server when a connect fails (nginx's proxy_next_upstream, counted
 * toward maxFails). When the upstream answers 101 its head goes to the client as sent and the two
 * sockets are joined byte for byte: frames are not parsed, so subprotocols, extensions
 * (permessage-deflate), fragmentation, ping/pong and close codes pass untouched. Any other answer
 * (401, 403, 404, ...) reaches the client as an ordinary HTTP response.
 *
 * Plain requests to the same location are proxied exactly as `proxy(target, options)` does.
 * `messages` switches upgrades to message mode (see messages.ts): frames are parsed on both hops
 * so plugins can inspect, rewrite or meter them.
 */
export interface WebSocketOptions extends ProxyOptions {
  /**
   * ms without a byte in either direction before a tunnel is closed, as nginx's
   * proxy_read_timeout on an upgraded connection; also how long the handshake answer may take.
   * Default 60000; 0 disables the idle timeout.
   */
  readTimeout?: number
  /** Tunnels (and handshakes in progress) this location keeps at once; beyond it an upgrade gets 503. Default 0: no limit. */
  maxConnections?: number
  /** Message mode: `true`, a message hook, or `{ onMessage, perMessageDeflate, maxPayload, highWaterMark }`. Default off: a byte tunnel. */
  messages?: MessageModeOption
}

/** After either side of a tunnel closes, how long the other may take to flush and close (ms). */
const CLOSE_GRACE = 1000

const kProxyState = Symbol.for('proxyctl.proxy.request')
interface ProxyRequestState { addrs: string, statuses: string, proxyHost: string }

/** Shared by every upgrade of one `websocket()` handler. */
interface HandlerState {
  readonly plan: ProxyPlan
  readonly maxConnections: number
  /** Handshakes in progress plus open tunnels (what maxConnections limits). */
  active: number
  readonly tunnels: Set<{ shutdown (): void }>
  /** Set at registration when message mode is on (ws and @fastify/websocket load only then). */
  messages: MessageMode | undefined
  /** Header names (lower case) the user hides; applied to the 101 head too. */
  readonly hideOnUpgrade: ReadonlySet<string>
}

/**
 * Proxies WebSocket upgrades of the location to `target` (a `proxy()` target), and its plain
 * requests as `proxy(target, options)`.
 */
export function websocket (target: string, options: WebSocketOptions = {}): LocationHandler {
  return defineHandler(`websocket ${target}`, (env) => {
    const { maxConnections, messages, ...proxyOptions } = options
    if (maxConnections !== undefined && (!Number.isInteger(maxConnections) || maxConnections < 0)) {
      throw env.error(`maxConnections must be an integer >= 0, got ${String(maxConnections)}`, '.maxConnections')
    }
    // Plain requests are proxy()'s; the tunnel shares its plan (pools, headers, phase hooks).
    const { plan, handler: plain } = compileProxy(target, proxyOptions, env)
    const state: HandlerState = {
      plan,
      maxConnections: maxConnections ?? 0,
      active: 0,
      tunnels: new Set(),
      messages: undefined,
      hideOnUpgrade: new Set((proxyOptions.hideHeaders ?? []).map((h) => h.toLowerCase()))
    }
    return {
      async plugin (instance) {
        await plain.plugin?.(instance)
        if (messages !== undefined && messages !== false) {
          const { MessageMode } = await import('./messages.js')
          state.messages = new MessageMode(messages)
          await state.messages.register(instance)
        }
        // On shutdown (after the listeners' grace period) whatever is still open is cut.
        instance.addHook('onClose', async () => {
          for (const t of [...state.tunnels]) t.shutdown()
        })
      },
      handle (request, reply) {
        const conn = upgradeOf(request.raw)
        if (conn === undefined) return plain.handle(request, reply)
        reply.hijack()
        const x = new UpgradeExchange(state, request, reply, conn)
        try { x.start() } catch (err) { x.internalError(err) }
        return undefined
      }
    }
  })
}

/**
 * One client upgrade: pick a peer, send the handshake, retry the next peer on a connect failure,
 * then open a tunnel (or a message relay) or pass the upstream's refusal on.
 */
class UpgradeExchange implements UpstreamHandshake {
  readonly tried = new Set<UpstreamPeer>()
  readonly started = Date.now()
  readonly state: ProxyRequestState = { addrs: '', statuses: '', proxyHost: '' }
  readonly ctx: RequestContext
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly log: FastifyBaseLogger
  readonly plan: ProxyPlan
  pool!: UpstreamPool
  path = ''
  upstreamName = ''
  proxyHost = ''
  attempts = 0
  current: { abort (err?: Error): void } | undefined
  clientGone = false
  responded = false
  /** The tunnel (or relay) took the sockets over. */
  handedOver = false
  private holdsSlot = false

  constructor (readonly s: HandlerState, readonly request: FastifyRequest, readonly reply: FastifyReply, readonly conn: UpgradeConnection) {
    this.ctx = request.proxyctl
    this.req = request.raw
    this.res = reply.raw
    this.log = request.log
    this.plan = s.plan
    this.ctx.locals[kProxyState] = this.state
  }

  private readonly onClientClose = (): void => {
    this.clientGone = true
    this.current?.abort()
    this.releaseSlot()
  }

  start (): void {
    const s = this.s
    if (s.maxConnections > 0 && s.active >= s.maxConnections) {
      this.log.warn({ maxConnections: s.maxConnections, active: s.active, request: this.ctx.requestUri },
        `websocket: maxConnections (${s.maxConnections}) reached, upgrade of "${this.ctx.requestUri}" refused with 503`)
      sendErrorPage(this.res, 503)
      return
    }
    if (s.messages !== undefined && !s.messages.acceptable(this.req)) {
      this.log.info({ request: this.ctx.requestUri }, 'websocket: not a valid WebSocket handshake, answered 400')
      sendErrorPage(this.res, 400)
      return
    }
    s.active++
    this.holdsSlot = true
    this.conn.socket.once('close', this.onClientClose)

    const plan = this.plan
    let target = plan.target
    let renderedUri: string | undefined
    if (target === undefined) {
      try {
        target = parseRenderedTarget((plan.targetTemplate as Template).render(this.ctx), plan.upstreamNames)
      } catch (err) {
        this.log.error({ reason: (err as Error).message }, (err as Error).message)
        this.finishWithError(undefined, 500)
        return
      }
      renderedUri = target.uriPart
    }
    this.pool = plan.pool ?? plan.poolFor(target)
    this.upstreamName = target.address.type === 'upstream' ? target.address.name : target.peer
    this.proxyHost = this.state.proxyHost = target.proxyHost
    const ctx = this.ctx
    this.path = plan.mapping({ uri: ctx.uri, requestUri: ctx.requestUri, args: ctx.args, uriChanged: ctx.uriChanged, internal: ctx.internalRedirects > 0 }, renderedUri)
    if (plan.pool === undefined) {
      this.pool.log ??= this.log
      this.pool.start().then(() => this.attempt(), (err: unknown) => this.finishWithError(classifyUpstreamError(err, 'connecting')))
    } else this.attempt()
  }

  releaseSlot (): void {
    if (!this.holdsSlot) return
    this.holdsSlot = false
    this.s.active--
  }

  /**
   * A bug (a phase hook or proxyctl itself threw): 500 and close if nothing was answered yet, else
   * the connection cut; one error line. The caller has ended its attempt first, so the upstream is
   * not blamed.
   */
  internalError (err: unknown): void {
    if (this.clientGone) return
    this.responded = true
    if (this.handedOver) failConnection(this.log, this.req, this.conn.socket, this.ctx.requestUri, err)
    else failRequest(this.log, this.req, this.res, this.ctx.requestUri, err)
  }

  /** One try at one peer. */
  attempt (): void {
    try {
      this.attemptOnce()
    } catch (err) {
      this.internalError(err)
    }
  }

  private attemptOnce (): void {
    if (this.clientGone) return
    const peer = pickPeer(this)
    if (peer === null) return
    const { method, path, headers } = upstreamRequestHead(this, peer)
    if (this.s.messages !== undefined) {
      this.current = this.s.messages.connect(this, peer, { method, path, headers })
      return
    }
    const attempt = new TunnelAttempt(this, peer)
    this.current = attempt
    ;(peer.pool as Dispatcher).dispatch({
      method,
      path: wirePath(path),
      headers,
      body: null,
      upgrade: this.req.headers.upgrade ?? 'websocket',
      headersTimeout: this.plan.readTimeout,
      bodyTimeout: this.plan.readTimeout,
      idempotent: false
    }, attempt)
  }

  canRetry (kind: NextUpstreamCase): boolean {
    const plan = this.plan
    if (this.clientGone || !plan.next.has(kind)) return false
    if (this.attempts >= tryBudget(plan, this.pool)) return false
    if (plan.tryTimeout > 0 && Date.now() - this.started >= plan.tryTimeout) return false
    return true
  }

  /** An attempt failed before any answer reached the client: log, hooks, then retry or 502/504. */
  failed (error: UpstreamError, peer: UpstreamPeer): void {
    if (this.clientGone) return
    if ((error.cause as { code?: string } | undefined)?.code === 'UND_ERR_INVALID_ARG') {
      // undici refused what we built (a bad header value): our fault, no failure counted.
      this.log.error({ upstream: this.upstreamName, server: peer.address, reason: (error.cause as Error).message }, `${(error.cause as Error).message} while sending request to upstream`)
      this.finishWithError(undefined, 500)
      return
    }
    peer.recordFailure(Date.now())
    this.log.error({ upstream: this.upstreamName, server: peer.address, code: error.code, reason: error.message, request: `${this.req.method} ${this.ctx.requestUri}` },
      `${error.message} (websocket handshake), upstream: "${this.upstreamName}", server: ${peer.address}`)
    for (const hook of this.plan.hooks.upstreamError) hook(this.ctx, { peer: peer.address, upstream: this.upstreamName, code: error.code, reason: error.message })
    if (this.responded) { this.res.destroy(error); return }
    if (this.canRetry(error.kind)) { this.attempt(); return }
    this.finishWithError(error)
  }

  finishWithError (error: UpstreamError | undefined, status = error?.status ?? 502): void {
    if (this.clientGone) return
    this.responded = true
    this.res.once('close', () => this.releaseSlot())
    sendErrorPage(this.res, status)
  }

  /**
   * The upstream answered something other than 101. Returns false when that status is one
   * nextUpstream retries (the attempt is dropped and the next peer tried); otherwise the head is
   * sent to the client and the caller streams the body.
   */
  refused (peer: UpstreamPeer, status: number, rawHeaders: Array<Buffer | string>, abort: () => void): boolean {
    this.state.statuses = this.state.statuses === '' ? String(status) : `${this.state.statuses}, ${status}`
    const plan = this.plan
    if (plan.nextStatuses.has(status) && this.canRetry(`http_${status}` as NextUpstreamCase)) {
      if (status !== 403 && status !== 404) peer.recordFailure(Date.now())
      abort()
      this.attempt()
      return false
    }
    peer.recordSuccess()
    let headers: string[]
    ;({ status, headers } = filterResponseHead(this, peer, status, rawHeaders))
    this.log.info({ upstream: this.upstreamName, server: peer.address, status }, `websocket: upstream refused the upgrade with ${status}, passed to the client`)
    this.responded = true
    this.res.once('close', () => this.releaseSlot())
    this.res.writeHead(status, headers)
    return true
  }

  /**
   * The 101's headers as the client gets them: as sent, minus the user's hideHeaders, through the
   * upstreamResponse hooks.
   */
  upgradeHeaders (peer: UpstreamPeer, rawHeaders: Array<Buffer | string>): string[] {
    this.state.statuses = this.state.statuses === '' ? '101' : `${this.state.statuses}, 101`
    let headers: string[] = []
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = latin1(rawHeaders[i] as Buffer | string)
      if (this.s.hideOnUpgrade.has(name.toLowerCase())) continue
      headers.push(name, latin1(rawHeaders[i + 1] as Buffer | string))
    }
    if (this.plan.hooks.upstreamResponse.length > 0) {
      const head = { status: 101, headers, peer: peer.address, upstream: this.upstreamName }
      for (const hook of this.plan.hooks.upstreamResponse) hook(this.ctx, head)
      headers = head.headers
    }
    return headers
  }

  /**
   * The upstream switched protocols: the client socket leaves its HTTP response and the
   * caller owns it. Returns false when the client already left (the caller drops the upstream).
   */
  takeOver (peer: UpstreamPeer): boolean {
    if (this.clientGone || this.conn.socket.destroyed) return false
    peer.recordSuccess()
    this.conn.socket.removeListener('close', this.onClientClose)
    this.res.detachSocket(this.conn.socket as never)
    this.handedOver = true
    return true
  }

  /** Registers an open tunnel or relay so shutdown can cut it. */
  track (t: { shutdown (): void }): () => void {
    this.s.tunnels.add(t)
    return () => { this.s.tunnels.delete(t); this.releaseSlot() }
  }

  get readTimeout (): number { return this.plan.readTimeout }
}

/** One handshake try at one peer over its undici pool; the dispatch handler of that try. */
class TunnelAttempt implements Dispatcher.DispatchHandler {
  private abortFn: ((err?: Error) => void) | undefined
  private aborted: Error | undefined
  private done = false
  private resumeFn: (() => void) | undefined

  constructor (private readonly x: UpgradeExchange, readonly peer: UpstreamPeer) {
    peer.acquire()
  }

  abort (err?: Error): void {
    if (this.abortFn !== undefined) this.abortFn(err)
    else this.aborted = err ?? new Error('aborted')
  }

  /** Releases the peer once, whatever ends the attempt (for a tunnel: when it closes). */
  private end (): void {
    if (this.done) return
    this.done = true
    this.peer.release()
  }

  onConnect (abort: (err?: Error) => void): void {
    this.abortFn = abort
    if (this.aborted !== undefined || this.x.clientGone) abort(this.aborted)
  }

  onUpgrade (_statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    const x = this.x
    if (!x.takeOver(this.peer)) {
      socket.destroy()
      this.end()
      return
    }
    try {
      const headers = x.upgradeHeaders(this.peer, rawHeaders ?? [])
      let head = 'HTTP/1.1 101 Switching Protocols\r\n'
      for (let i = 0; i < headers.length; i += 2) head += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`
      x.conn.socket.write(Buffer.from(head + '\r\n', 'latin1'))
      new Tunnel(x, this.peer, x.conn.socket, socket, x.conn.head, () => this.end())
    } catch (err) {
      // A hook (upstreamResponse) or the tunnel's set-up threw: this tunnel ends, not the process
      // (undici would count it against the upstream).
      socket.destroy()
      this.end()
      x.internalError(err)
    }
  }

  onHeaders (status: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (status < 200) return true
    try {
      if (!this.x.refused(this.peer, status, rawHeaders, () => { this.end(); this.abortFn?.() })) return false
    } catch (err) {
      this.end()
      this.abortFn?.()
      this.x.internalError(err)
      return false
    }
    this.resumeFn = resume
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.x.res.write(chunk)) return true
    this.x.res.once('drain', this.resumeFn as () => void)
    return false
  }

  onComplete (): void {
    this.end()
    this.x.res.end()
  }

  onError (err: Error): void {
    if (this.done) return
    this.end()
    if (this.x.clientGone) return
    this.x.failed(classifyUpstreamError(err, this.x.responded ? 'reading' : 'connecting'), this.peer)
  }
}

/**
 * Two sockets joined byte for byte. Backpressure is the pipes' own (a side that stops reading
 * pauses the other's socket, so nothing piles up here); a FIN is passed on as a FIN (half-close);
 * when one side closes the other gets `CLOSE_GRACE` ms to flush, and an abrupt close (reset,
 * error) is passed on at once. `readTimeout` closes a tunnel idle in both directions.
 */
class Tunnel {
  private readonly opened = Date.now()
  private fromClient = 0
  private fromUpstream = 0
  private idle: NodeJS.Timeout | undefined
  private guard: NodeJS.Timeout | undefined
  private readonly closedSides = new Set<'client' | 'upstream'>()
  private reason: string | undefined
  private error: Error | undefined
  private readonly untrack: () => void

  constructor (
    private readonly x: UpgradeExchange,
    private readonly peer: UpstreamPeer,
    private readonly client: Duplex,
    private readonly upstream: Duplex,
    clientHead: Buffer,
    private readonly release: () => void
  ) {
    this.untrack = x.track(this)
    // A FIN from one side must not close the other direction.
    ;(client as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true
    ;(upstream as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true
    if (clientHead.length > 0) { this.fromClient += clientHead.length; upstream.write(clientHead) }
    client.pipe(upstream)
    upstream.pipe(client)
    const limit = x.readTimeout
    if (limit > 0) this.idle = setTimeout(() => this.onIdle(limit), limit)
    client.on('data', (c: Buffer) => { this.fromClient += c.length; this.idle?.refresh() })
    upstream.on('data', (c: Buffer) => { this.fromUpstream += c.length; this.idle?.refresh() })
    client.on('error', (err) => { this.error ??= err; this.reason ??= `client error (${(err as NodeJS.ErrnoException).code ?? err.message})` })
    upstream.on('error', (err) => { this.error ??= err; this.reason ??= `upstream error (${(err as NodeJS.ErrnoException).code ?? err.message})` })
    client.once('close', (hadError: boolean) => this.sideClosed('client', client, upstream, hadError))
    upstream.once('close', (hadError: boolean) => this.sideClosed('upstream', upstream, client, hadError))
    // A side that closed before we listened (it happens between undici's handoff and here).
    if (upstream.closed) this.sideClosed('upstream', upstream, client, true)
    if (client.closed) this.sideClosed('client', client, upstream, true)
    x.log.debug({ upstream: x.upstreamName, server: peer.address }, `websocket tunnel open, upstream: "${x.upstreamName}", server: ${peer.address}`)
  }

  private sideClosed (side: 'client' | 'upstream', me: Duplex, other: Duplex, hadError: boolean): void {
    if (this.closedSides.has(side)) return
    this.closedSides.add(side)
    this.reason ??= `${side} closed`
    if (this.closedSides.size === 2) { this.finish(); return }
    if (other.destroyed) return // its 'close' is on the way
    if (hadError || !me.readableEnded) {
      // Reset or died without a FIN: nothing more can be exchanged.
      other.destroy()
      return
    }
    other.end()
    this.guard = setTimeout(() => other.destroy(), CLOSE_GRACE)
  }

  private onIdle (limit: number): void {
    this.reason = `idle for ${limit} ms (readTimeout)`
    this.x.log.warn({ upstream: this.x.upstreamName, server: this.peer.address, readTimeout: limit },
      `websocket tunnel idle for ${limit} ms (readTimeout), closing it, upstream: "${this.x.upstreamName}", server: ${this.peer.address}`)
    this.client.destroy()
    this.upstream.destroy()
  }

  shutdown (): void {
    this.reason = 'proxy shutting down'
    this.client.destroy()
    this.upstream.destroy()
  }

  private finished = false
  private finish (): void {
    if (this.finished) return
    this.finished = true
    if (this.idle !== undefined) clearTimeout(this.idle)
    if (this.guard !== undefined) clearTimeout(this.guard)
    this.release()
    this.untrack()
    const x = this.x
    const ms = Date.now() - this.opened
    x.log.info({
      upstream: x.upstreamName, server: this.peer.address, durationMs: ms, bytesFromClient: this.fromClient, bytesFromUpstream: this.fromUpstream, reason: this.reason
    }, `websocket tunnel closed (${this.reason ?? 'closed'}) after ${ms} ms, ${this.fromClient} bytes from client, ${this.fromUpstream} bytes from upstream, upstream: "${x.upstreamName}", server: ${this.peer.address}`)
  }
}
