import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import { defineHandler, type LocationHandler } from '@proxyctl/core'
import { failConnection, serverLabel, tunnelFamily, upgradeOf, type UpgradeConnection } from '@proxyctl/core/internal'
import { UpstreamAttempt } from '../proxy/attempt.js'
import { UpstreamExchange, latin1 } from '../proxy/exchange.js'
import type { UpstreamError } from '../proxy/errors.js'
import type { ProxyOptions, ProxyPlan } from '../proxy/plan.js'
import { compileProxy, wirePath } from '../proxy/proxy.js'
import { explainProxy } from '../proxy/explain.js'
import type { UpstreamPeer } from '../upstream/pool.js'
import type { MessageMode, UpstreamHandshake } from './messages.js'
import type { MessageModeOption } from './message-hooks.js'
import { WebSocketSession } from './session.js'

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

/** A location's open tunnels, which outlive a reload that does not change the location. */
interface OpenTunnels {
  /** Handshakes in progress plus open tunnels (what maxConnections limits). */
  active: number
  readonly tunnels: Set<{ shutdown (): void }>
  /** Set when an app registers the location (a config only checked registers nothing). */
  stopCollecting: (() => void) | undefined
}

/** Shared by every upgrade of one `websocket()` handler. */
interface HandlerState {
  readonly plan: ProxyPlan
  readonly maxConnections: number
  /** The location's tunnels: handed to the next config by a reload that leaves the location as it is. */
  readonly open: OpenTunnels
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
    // The same location (server, path, target and options) after a reload keeps its tunnels.
    const where = `${serverLabel(env.server)} ${env.location?.key ?? ''}`
    const open = env.carry(`websocket:${where}`, { target, options }, (): OpenTunnels => ({ active: 0, tunnels: new Set(), stopCollecting: undefined }))
    const state: HandlerState = {
      plan,
      maxConnections: maxConnections ?? 0,
      open,
      messages: undefined,
      hideOnUpgrade: new Set((proxyOptions.hideHeaders ?? []).map((h) => h.toLowerCase()))
    }
    return {
      async plugin (instance) {
        await plain.plugin?.(instance)
        if (open.stopCollecting === undefined) {
          const gauge = tunnelFamily(env.metrics).child(serverLabel(env.server), env.location?.key ?? '')
          open.stopCollecting = env.metrics.onCollect(() => { gauge.set(open.tunnels.size) })
        }
        if (messages !== undefined && messages !== false) {
          const { MessageMode } = await import('./messages.js')
          state.messages = new MessageMode(messages)
          await state.messages.register(instance)
        }
        // On shutdown (after the listeners' grace period) whatever is still open is cut; after
        // a reload, unless the new config took the location's tunnels over.
        instance.addHook('onClose', async () => {
          if (env.handedOver(open)) return
          open.stopCollecting?.()
          for (const t of [...open.tunnels]) t.shutdown()
        })
      },
      // `/ws` answers 301 to `/ws/`, as a proxy() location does.
      autoRedirect: true,
      // What Node's parser hands over as an upgrade: an Upgrade header that Connection names.
      explain: (ctx) => explainProxy(plan, ctx, 'websocket', ctx.req.headers.upgrade !== undefined && /(?:^|,)\s*upgrade\s*(?:,|$)/i.test(ctx.req.headers.connection ?? '')),
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
 * One client upgrade (exchange.ts tells the phases): pick a peer, send the handshake, retry the
 * next peer on a failure nextUpstream names, then open a tunnel (or a message relay) or pass the
 * upstream's refusal on.
 */
class UpgradeExchange extends UpstreamExchange implements UpstreamHandshake {
  protected override readonly logSuffix = ' (websocket handshake)'
  current: { abort (err?: Error): void } | undefined
  /** The tunnel (or relay) took the sockets over. */
  handedOver = false
  private holdsSlot = false

  constructor (readonly s: HandlerState, request: FastifyRequest, reply: FastifyReply, readonly conn: UpgradeConnection) {
    super(s.plan, request, reply)
  }

  private readonly onClientClose = (): void => {
    this.clientGone = true
    this.current?.abort()
    this.releaseSlot()
  }

  start (): void {
    const s = this.s
    if (s.maxConnections > 0 && s.open.active >= s.maxConnections) {
      const c = this.context()
      this.log.warn({ code: 'PROXYCTL_WEBSOCKET_MAX_CONNECTIONS', limit: 'maxConnections', maxConnections: s.maxConnections, active: s.open.active, ...c.fields },
        `websocket: maxConnections (${s.maxConnections}) reached, upgrade of "${this.ctx.requestUri}" refused with 503${c.text}`)
      this.sendOwnErrorPage(503)
      return
    }
    if (s.messages !== undefined && !s.messages.acceptable(this.req)) {
      const c = this.context()
      this.log.info({ code: 'PROXYCTL_WEBSOCKET_HANDSHAKE_INVALID', ...c.fields }, `websocket: not a valid WebSocket handshake, answered 400${c.text}`)
      this.sendOwnErrorPage(400)
      return
    }
    s.open.active++
    this.holdsSlot = true
    this.conn.socket.once('close', this.onClientClose)
    if (!this.begin()) return
    this.firstAttempt()
  }

  releaseSlot (): void {
    if (!this.holdsSlot) return
    this.holdsSlot = false
    this.s.open.active--
  }

  /** upstream_peer, upstream_request, then the handshake goes out (a byte tunnel's or message mode's). */
  protected attemptOnce (): void {
    if (this.clientGone) return
    const peer = this.pickPeer()
    if (peer === null) return
    const { method, path, headers } = this.requestHead(peer)
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
      // readTimeout is the attempt's own timer (TunnelAttempt), not undici's.
      headersTimeout: 0,
      bodyTimeout: 0,
      idempotent: false
    }, attempt)
  }

  /** The answer is a plain page on the upgrade's response (no error_page redirect on a connection about to switch). */
  override finishWithError (error: UpstreamError | undefined, status = error?.status ?? 502): void {
    if (this.clientGone) return
    this.responded = true
    this.res.once('close', () => this.releaseSlot())
    this.sendOwnErrorPage(status)
  }

  /** Once the sockets are joined there is no response to answer on: the connection is cut. */
  override internalError (err: unknown): void {
    if (this.clientGone) return
    if (!this.handedOver) { super.internalError(err); return }
    this.responded = true
    failConnection(this.log, this.req, this.conn.socket, this.ctx.requestUri, err)
  }

  /**
   * The upstream answered something other than 101. Returns false when that status is one
   * nextUpstream retries (the attempt is dropped and the next peer tried); otherwise the head is
   * sent to the client and the caller streams the body.
   */
  refused (peer: UpstreamPeer, status: number, rawHeaders: Array<Buffer | string>, abort: () => void, statusText?: string): boolean {
    if (this.upstreamAnswered(peer, status)) {
      abort()
      this.attempt()
      return false
    }
    const upstreamStatus = status
    let headers: string[]
    ;({ status, headers } = this.responseHead(peer, status, rawHeaders))
    if (status !== upstreamStatus) statusText = undefined
    this.addHeaders(status, headers)
    this.log.info({ upstream: this.upstreamName, server: peer.address, status }, `websocket: upstream refused the upgrade with ${status}, passed to the client`)
    this.responded = true
    this.res.once('close', () => this.releaseSlot())
    this.downstream.head(status, headers, statusText)
    return true
  }

  /**
   * The 101's headers as the client gets them: as sent, minus the user's hideHeaders, through the
   * upstreamResponse hooks.
   */
  upgradeHeaders (peer: UpstreamPeer, rawHeaders: Array<Buffer | string>): string[] {
    this.noteStatus(101)
    // The proxy's own Date, as on every other answer (nginx too); the upstream's is not passed.
    let headers: string[] = ['Date', new Date().toUTCString()]
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = latin1(rawHeaders[i] as Buffer | string)
      const lower = name.toLowerCase()
      if (lower === 'date' || this.s.hideOnUpgrade.has(lower)) continue
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
    // The access line is the session's, at its close (session.ts), not the response's.
    this.record.tunneled = true
    return true
  }

  /** Registers an open tunnel or relay so shutdown can cut it. */
  track (t: { shutdown (): void }): () => void {
    this.s.open.tunnels.add(t)
    return () => { this.s.open.tunnels.delete(t); this.releaseSlot() }
  }

  get readTimeout (): number { return this.plan.readTimeout }
}

/** One handshake try at one peer over its undici pool; the dispatch handler of that try. */
class TunnelAttempt extends UpstreamAttempt implements Dispatcher.DispatchHandler {
  private resumeFn: (() => void) | undefined

  constructor (private readonly x: UpgradeExchange, peer: UpstreamPeer) {
    super(x, peer)
  }

  onConnect (abort: (err?: Error) => void): void {
    this.connected(abort)
  }

  onUpgrade (_statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    this.stopReadTimer()
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
      const tunnel = new Tunnel(x, this.peer, x.conn.socket, socket, x.conn.head, () => this.end())
      tunnel.headBytes = head.length + 2
    } catch (err) {
      // A hook (upstreamResponse) or the tunnel's set-up threw: this tunnel ends, not the process
      // (undici would count it against the upstream).
      socket.destroy()
      this.end()
      x.internalError(err)
    }
  }

  onHeaders (status: number, rawHeaders: Buffer[], resume: () => void, statusText?: string): boolean {
    this.lastRead = performance.now()
    if (status < 200) return true
    this.headersSeen = true
    try {
      if (!this.x.refused(this.peer, status, rawHeaders, () => { this.end(); this.abortFn?.() }, statusText)) return false
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
    this.lastRead = performance.now()
    const downstream = this.x.downstream
    if (downstream.write(chunk)) return true
    // The client is slow to take the refusal's body: the upstream owes nothing meanwhile.
    this.paused = true
    downstream.onceDrained(() => { this.paused = false; this.lastRead = performance.now(); (this.resumeFn as () => void)() })
    return false
  }

  onComplete (): void {
    this.end()
    this.x.downstream.end()
  }

  onError (err: Error): void {
    if (this.done) return
    this.end()
    if (this.x.clientGone) return
    this.x.attemptFailed(err, this.peer, this.x.responded)
  }
}


/**
 * Two sockets joined byte for byte. Backpressure is the pipes' own (a side that stops reading
 * pauses the other's socket, so nothing piles up here); a FIN is passed on as a FIN (half-close);
 * when one side closes the other gets `CLOSE_GRACE` ms to flush, and an abrupt close (reset,
 * error) is passed on at once. `readTimeout` closes a tunnel idle in both directions.
 */
class Tunnel extends WebSocketSession {
  private fromClient = 0
  private fromUpstream = 0
  private readonly closedSides = new Set<'client' | 'upstream'>()

  constructor (
    x: UpgradeExchange,
    peer: UpstreamPeer,
    private readonly client: Duplex,
    private readonly upstream: Duplex,
    clientHead: Buffer,
    release: () => void
  ) {
    super(x, peer, release, 'tunnel')
    // A FIN from one side must not close the other direction.
    ;(client as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true
    ;(upstream as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true
    if (clientHead.length > 0) { this.fromClient += clientHead.length; upstream.write(clientHead) }
    client.pipe(upstream)
    upstream.pipe(client)
    client.on('data', (c: Buffer) => { this.fromClient += c.length; this.touch() })
    upstream.on('data', (c: Buffer) => { this.fromUpstream += c.length; this.touch() })
    client.on('error', (err) => { this.reason ??= `client error (${(err as NodeJS.ErrnoException).code ?? err.message})` })
    upstream.on('error', (err) => { this.reason ??= `upstream error (${(err as NodeJS.ErrnoException).code ?? err.message})` })
    client.once('close', (hadError: boolean) => this.sideClosed('client', client, upstream, hadError))
    upstream.once('close', (hadError: boolean) => this.sideClosed('upstream', upstream, client, hadError))
    // A side that closed before we listened (it happens between undici's handoff and here).
    if (upstream.closed) this.sideClosed('upstream', upstream, client, true)
    if (client.closed) this.sideClosed('client', client, upstream, true)
    this.logOpen()
  }

  private sideClosed (side: 'client' | 'upstream', me: Duplex, other: Duplex, hadError: boolean): void {
    if (this.closedSides.has(side)) return
    this.closedSides.add(side)
    this.reason ??= `${side} closed`
    if (this.closedSides.size === 2) {
      this.finish({ bytesFromClient: this.fromClient, bytesFromUpstream: this.fromUpstream }, `${this.fromClient} bytes from client, ${this.fromUpstream} bytes from upstream`)
      return
    }
    if (other.destroyed) return // its 'close' is on the way
    if (hadError || !me.readableEnded) {
      // Reset or died without a FIN: nothing more can be exchanged.
      other.destroy()
      return
    }
    other.end()
    this.afterGrace(() => other.destroy())
  }

  protected destroyBoth (): void {
    this.client.destroy()
    this.upstream.destroy()
  }
}
