import type { IncomingMessage, ServerResponse } from 'node:http'
import net, { type Socket } from 'node:net'
import tls from 'node:tls'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import { WebSocket, WebSocketServer, type RawData } from 'ws'
import { type RequestContext } from '@proxyctl/core'
import { phaseHooks, upstreamTlsOptions, type ExchangeRecord, type UpgradeConnection } from '@proxyctl/core/internal'
import type { MessageHook, MessageModeOption, MessageModeOptions, WebSocketMessage } from './message-hooks.js'

export type { MessageHook, MessageModeOption, MessageModeOptions, WebSocketMessage }
import { classifyUpstreamError, UpstreamError } from '../proxy/errors.js'
import type { UpstreamPeer, UpstreamPool } from '../upstream/pool.js'
import { WebSocketSession } from './session.js'

/**
 * Message mode of `websocket()`: instead of joining the two sockets byte for byte, the proxy ends
 * the WebSocket protocol on both hops (the client's through @fastify/websocket's `ws` server, the
 * upstream's with a `ws` client) and relays whole messages, so plugins can inspect, rewrite, drop
 * or meter them:
 *
 * ```ts
 * const meter: FastifyPluginAsync = async (f) => {
 *   addPhaseHook(f, 'message', (ctx, m) => { ctx.locals.bytes = (Number(ctx.locals.bytes) || 0) + m.data.length })
 * }
 * locations: { '/ws/': { plugins: [meter], handler: websocket('http://ws', { messages: true }) } }
 * ```
 *
 * Each hop negotiates its own extensions (permessage-deflate), fragmentation is undone (a hook
 * sees whole messages), pings are answered per hop. What passes end to end: the subprotocol (the
 * client's offer goes upstream and the upstream's choice is what the client gets), the upstream's
 * extra 101 headers (cookies), text/binary, close codes and reasons. The handshake, failover,
 * maxConnections and readTimeout are the tunnel's.
 */

/** What the tunnel's handshake logic offers message mode (implemented in tunnel.ts). */
export interface UpstreamHandshake {
  readonly ctx: RequestContext
  /** The request's record: the session completes it (101, bytes) and writes its access line at close. */
  readonly record: ExchangeRecord
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly log: FastifyBaseLogger
  readonly conn: UpgradeConnection
  readonly pool: UpstreamPool
  readonly upstreamName: string
  readonly readTimeout: number
  readonly clientGone: boolean
  /** A failed try: counts the failure, logs, retries the next peer or answers 502/504 (exchange.ts). */
  attemptFailed (err: unknown, peer: UpstreamPeer, sent: boolean): void
  /** A non-101 answer: false when it is retried; else its head was sent and the caller sends the body. */
  refused (peer: UpstreamPeer, status: number, rawHeaders: Array<Buffer | string>, abort: () => void): boolean
  /** The 101's headers for the client (hideHeaders, upstreamResponse hooks applied). */
  upgradeHeaders (peer: UpstreamPeer, rawHeaders: Array<Buffer | string>): string[]
  /** Takes the client socket over; false when the client has left. */
  takeOver (peer: UpstreamPeer): boolean
  /** Registers an open connection for shutdown; returns its unregister function. */
  track (t: { shutdown (): void }): () => void
  /** nginx's error log context (client, server name, request line, Host) for a log line. */
  context (): { fields: Record<string, string>, text: string }
  /** A hook or proxyctl threw: 500 (or the connection cut once handed over) and an error line. */
  internalError (err: unknown): void
}

const kProtocol = Symbol('proxyctl.websocket.protocol')
const kExtraHeaders = Symbol('proxyctl.websocket.extraHeaders')
type AcceptRequest = IncomingMessage & { [kProtocol]?: string, [kExtraHeaders]?: string[] }

/** Request headers the ws client writes itself. */
const OWN_REQUEST_HEADERS = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol'])
/** 101 headers the ws server writes itself for the client's hop. */
const OWN_RESPONSE_HEADERS = new Set(['upgrade', 'connection', 'sec-websocket-accept', 'sec-websocket-extensions', 'sec-websocket-protocol'])
const KEY = /^[+/0-9A-Za-z]{22}==$/

/** One per `websocket(..., { messages })` handler. */
export class MessageMode {
  readonly options: MessageModeOptions
  hooks: MessageHook[] = []
  private wss!: WebSocketServer

  constructor (option: MessageModeOption) {
    this.options = typeof option === 'function' ? { onMessage: option } : option === true ? {} : option === false ? {} : option
  }

  get highWaterMark (): number { return this.options.highWaterMark ?? 1024 * 1024 }

  /** Called from the handler's plugin, in the location's scope. */
  async register (instance: FastifyInstance): Promise<void> {
    this.hooks = [...phaseHooks(instance, 'message'), ...(this.options.onMessage !== undefined ? [this.options.onMessage] : [])]
    const options = {
      perMessageDeflate: this.options.perMessageDeflate ?? true,
      ...(this.options.maxPayload !== undefined ? { maxPayload: this.options.maxPayload } : {}),
      // The client gets the subprotocol the upstream chose (none if it chose none).
      handleProtocols: (_offered: Set<string>, req: IncomingMessage) => (req as AcceptRequest)[kProtocol] ?? false
    }
    // In a child scope of its own, so its route and request hooks touch nothing of the location's.
    await instance.register(async (child) => {
      if (child.hasRequestDecorator('ws')) {
        // @fastify/websocket is registered above us already: a server of our own.
        this.wss = new WebSocketServer({ noServer: true, ...options })
        child.addHook('onClose', (_i, done) => { this.wss.close(() => done()) })
      } else {
        await child.register(fastifyWebsocket, { options })
        this.wss = child.websocketServer
      }
      // The upstream's own 101 headers (cookies, ...) reach the client too.
      this.wss.on('headers', (headers: string[], req: IncomingMessage) => {
        const extra = (req as AcceptRequest)[kExtraHeaders]
        if (extra !== undefined) headers.push(...extra)
      })
    })
  }

  /** A handshake ws can accept (checked before the upstream is contacted). */
  acceptable (req: IncomingMessage): boolean {
    const h = req.headers
    return req.method === 'GET' && h.upgrade?.toLowerCase() === 'websocket' &&
      KEY.test(String(h['sec-websocket-key'] ?? '').trim()) && (h['sec-websocket-version'] === '13' || h['sec-websocket-version'] === '8')
  }

  /** One handshake try at `peer` with a ws client. */
  connect (x: UpstreamHandshake, peer: UpstreamPeer, head: { method: string, path: string, headers: string[] }): { abort (): void } {
    peer.acquire()
    let released = false
    const release = (): void => { if (!released) { released = true; peer.release() } }
    let settled = false
    const settings = x.pool.settings
    const target = peer.target
    const secure = settings.scheme === 'https'
    const url = `${secure ? 'wss' : 'ws'}://${target.kind === 'unix' ? 'localhost' : target.label}${head.path}`
    const headers: Record<string, string | string[]> = {}
    for (let i = 0; i < head.headers.length; i += 2) {
      const name = head.headers[i] as string
      if (OWN_REQUEST_HEADERS.has(name.toLowerCase())) continue
      const prev = headers[name]
      const value = head.headers[i + 1] as string
      headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value]
    }
    const offered = String(x.req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '')
    let ws: WebSocket
    // readTimeout from the request to the answer's head, as the other legs keep it (ws's own
    // handshakeTimeout only bounds connect and handshake as a whole).
    let readTimer: NodeJS.Timeout | undefined
    const stopReadTimer = (): void => { clearTimeout(readTimer); readTimer = undefined }
    const watchHead = (socket: net.Socket): net.Socket => {
      if (x.readTimeout > 0) {
        socket.once(secure ? 'secureConnect' : 'connect', () => {
          readTimer = setTimeout(() => {
            if (settled) return
            settled = true
            ws.terminate()
            release()
            if (!x.clientGone) x.attemptFailed(new UpstreamError('PROXYCTL_UPSTREAM_TIMEOUT', 'timeout', 504, 'upstream timed out while reading response header'), peer, false)
          }, x.readTimeout).unref()
        })
      }
      return socket
    }
    try {
      ws = new WebSocket(url, offered, {
        headers,
        perMessageDeflate: this.options.perMessageDeflate ?? true,
        ...(this.options.maxPayload !== undefined ? { maxPayload: this.options.maxPayload } : {}),
        handshakeTimeout: settings.connectTimeout + x.readTimeout,
        followRedirects: false,
        createConnection: () => watchHead(target.kind === 'unix'
          ? net.connect(target.path)
          : secure
            ? tls.connect({ host: target.host, port: target.port, ...upstreamTlsOptions(settings.tls, target.host) })
            : net.connect(target.port, target.host))
      })
    } catch (err) {
      release()
      // Our request, not the peer: answered 500 without counting a failure.
      const error = new UpstreamError('PROXYCTL_UPSTREAM_REQUEST_INVALID', 'error', 500, `cannot build the websocket request: ${(err as Error).message}`, err)
      queueMicrotask(() => x.attemptFailed(error, peer, false))
      return { abort () {} }
    }
    let upgradeHeaders: string[] = []
    ws.once('upgrade', (res: IncomingMessage) => { stopReadTimer(); upgradeHeaders = res.rawHeaders })
    ws.on('unexpected-response', (req, res) => {
      stopReadTimer()
      settled = true
      if (!x.refused(peer, res.statusCode ?? 502, res.rawHeaders, () => { release(); req.destroy() })) return
      res.pipe(x.res)
      res.once('error', () => x.res.destroy())
      res.once('close', () => { release(); if (!res.complete) x.res.destroy() })
    })
    ws.on('error', (err: Error) => {
      stopReadTimer()
      if (settled) return
      settled = true
      release()
      if (x.clientGone) return
      x.attemptFailed(classifyHandshakeError(err), peer, false)
    })
    ws.once('open', () => {
      stopReadTimer()
      settled = true
      if (!x.takeOver(peer)) { ws.terminate(); release(); return }
      try {
        const extra: string[] = []
        const out = x.upgradeHeaders(peer, upgradeHeaders)
        for (let i = 0; i < out.length; i += 2) {
          if (!OWN_RESPONSE_HEADERS.has((out[i] as string).toLowerCase())) extra.push(`${out[i] as string}: ${out[i + 1] as string}`)
        }
        this.accept(x, peer, ws, extra, release)
      } catch (err) {
        ws.terminate()
        release()
        x.internalError(err)
      }
    })
    return { abort () { stopReadTimer(); if (!settled) ws.terminate() } }
  }

  /** The upstream is open: finish the client's handshake, then relay. */
  private accept (x: UpstreamHandshake, peer: UpstreamPeer, upstream: WebSocket, extra: string[], release: () => void): void {
    const req = x.req as AcceptRequest
    req[kProtocol] = upstream.protocol === '' ? undefined : upstream.protocol
    req[kExtraHeaders] = extra
    const socket = x.conn.socket as Socket
    // ws answers a handshake it refuses itself and closes the socket: drop the upstream then.
    const early = (): void => { upstream.terminate(); release() }
    socket.once('close', early)
    this.wss.handleUpgrade(req, socket, x.conn.head, (client) => {
      socket.removeListener('close', early)
      this.wss.emit('connection', client, req)
        new Relay(this, x, peer, client, upstream, release)
    })
  }
}

function classifyHandshakeError (err: Error): UpstreamError {
  if (err.message === 'Opening handshake has timed out') {
    return new UpstreamError('PROXYCTL_UPSTREAM_TIMEOUT', 'timeout', 504, 'upstream timed out during the websocket handshake', err)
  }
  if ((err as NodeJS.ErrnoException).code === undefined && /Sec-WebSocket|subprotocol|Upgrade header|extension/i.test(err.message)) {
    return new UpstreamError('PROXYCTL_UPSTREAM_BAD_RESPONSE', 'invalid_header', 502, `upstream sent an invalid websocket handshake (${err.message})`, err)
  }
  return classifyUpstreamError(err, 'connecting')
}

/** Close codes an endpoint may send in a close frame (RFC 6455 7.4). */
function sendable (code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)
}

/** Two WebSocket connections relaying messages through the hooks. */
class Relay extends WebSocketSession {
  private readonly count = { client: 0, upstream: 0 }
  private readonly bytes = { client: 0, upstream: 0 }
  /** Bytes sent toward each side and not yet written. */
  private readonly pending = { client: 0, upstream: 0 }

  constructor (
    private readonly mode: MessageMode,
    x: UpstreamHandshake,
    peer: UpstreamPeer,
    private readonly client: WebSocket,
    private readonly upstream: WebSocket,
    release: () => void
  ) {
    super(x, peer, release, 'relay')
    const touch = (): void => { this.touch() }
    client.on('message', (data, isBinary) => this.forward('client', data, isBinary))
    upstream.on('message', (data, isBinary) => this.forward('upstream', data, isBinary))
    for (const ws of [client, upstream]) { ws.on('ping', touch); ws.on('pong', touch) }
    client.on('error', (err) => { this.reason ??= `client error (${err.message})` })
    upstream.on('error', (err) => { this.reason ??= `upstream error (${err.message})` })
    client.on('close', (code, reason) => this.closed('client', code, reason))
    upstream.on('close', (code, reason) => this.closed('upstream', code, reason))
    this.logOpen({ protocol: upstream.protocol })
  }

  private forward (from: 'client' | 'upstream', raw: RawData, isBinary: boolean): void {
    this.touch()
    const src = from === 'client' ? this.client : this.upstream
    const dest = from === 'client' ? this.upstream : this.client
    const to = from === 'client' ? 'upstream' : 'client'
    let data: Buffer | string = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw)
    let binary = isBinary
    this.count[from]++
    this.bytes[from] += data.length
    const hooks = this.mode.hooks
    if (hooks.length > 0) {
      const message: WebSocketMessage = { from, data, binary, drop: false, peer: this.peer.address, upstream: this.x.upstreamName }
      try {
        for (const hook of hooks) hook(this.x.ctx, message)
      } catch (err) {
        // A message hook threw: this relay ends (the client's connection cut, the upstream closed with it), not the process.
        this.reason = 'a message hook threw'
        this.x.internalError(err)
        return
      }
      if (message.drop) return
      data = message.data
      binary = message.binary
    }
    if (dest.readyState !== WebSocket.OPEN) return
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length
    this.pending[to] += size
    const hwm = this.mode.highWaterMark
    dest.send(data, { binary }, () => {
      this.pending[to] -= size
      if (src.isPaused && this.pending[to] <= hwm / 2 && src.readyState === WebSocket.OPEN) src.resume()
    })
    // The destination is slow: stop reading from the source until it catches up.
    if (this.pending[to] > hwm && !src.isPaused) src.pause()
  }

  private closed (side: 'client' | 'upstream', code: number, reason: Buffer): void {
    this.reason ??= `${side} closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`
    const other = side === 'client' ? this.upstream : this.client
    if (other.readyState === WebSocket.CLOSED) { this.done(); return }
    if (other.readyState === WebSocket.OPEN) {
      if (sendable(code)) other.close(code, reason)
      else if (code === 1005) other.close()
      else { other.terminate(); return }
    }
    this.afterGrace(() => other.terminate())
  }

  protected destroyBoth (): void {
    this.client.terminate()
    this.upstream.terminate()
  }

  /** Both peers get a close frame 1001 (going away) and `CLOSE_GRACE` ms to answer it. */
  protected override goAway (): void {
    this.client.close(1001)
    this.upstream.close(1001)
    this.afterGrace(() => this.destroyBoth())
  }

  private done (): void {
    const { count, bytes } = this
    this.finish({ messagesFromClient: count.client, messagesFromUpstream: count.upstream, bytesFromClient: bytes.client, bytesFromUpstream: bytes.upstream },
      `${count.client} messages from client, ${count.upstream} from upstream`)
  }
}
