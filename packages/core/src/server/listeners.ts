import cluster from 'node:cluster'
import fs from 'node:fs'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import type { Http2ServerRequest } from 'node:http2'
import net, { type Socket } from 'node:net'
import type tls from 'node:tls'
import type { Duplex } from 'node:stream'
import type { ResolvedListen } from '../config/model.js'
import { BadRequestError, ListenError } from '../errors.js'
import { checkRequestBody } from '../http/request-body-limit.js'
import { acceptUpgrade, upgradeBodyError } from '../http/upgrade.js'
import { kRequestContext, refuseRequest, routeRequest, type RoutedRequest } from '../routing/router.js'
import { createTlsServer, updateTlsServer } from './tls.js'
import { attachHttp2, connectionSocketOf, H2_ALPN, type Http2Front } from './http2.js'
import { answerClientError, failConnection, failRequest, refuseConnect } from './guard.js'
import type { ProxyApp } from './app.js'
import { ClientConnections, nextConnectionId, nodeKeepAliveTimeout, sendSweepInterval } from './connection.js'
import { ExchangeRecord, kRecord } from '../log/exchange-record.js'
import { writeAccessLine } from '../log/access-logs.js'
import { coreFamilies, meterRequest } from '../metrics/proxy-metrics.js'
import type { MetricsRegistry } from '../metrics/registry.js'

type RecordedResponse = ServerResponse & { [kRecord]?: ExchangeRecord }


const REASONS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this machine',
  ENOENT: 'no such directory for the socket'
}

/**
 * Node's http server with the connection limits of the address's default server, as nginx reads
 * them before it knows the Host: client_header_timeout for the whole head (checked often enough to
 * close a slow head within half a second of it), keepalive_timeout, and a parser that takes as much as
 * nginx's header buffers could hold (request-head.ts then refuses what they would not). No
 * overall request deadline, as nginx.
 */
function createServer (listen: ResolvedListen): http.Server {
  const limits = listen.defaultServer.limits
  const { number, size } = limits.largeClientHeaderBuffers
  const options: http.ServerOptions = {
    keepAliveTimeout: nodeKeepAliveTimeout(limits.keepaliveTimeout),
    requestTimeout: 0,
    headersTimeout: limits.clientHeaderTimeout,
    connectionsCheckingInterval: Math.min(500, Math.max(50, Math.floor(limits.clientHeaderTimeout / 20))),
    maxHeaderSize: 1024 + number * size,
    // router.ts answers an HTTP/1.1 request without Host with nginx's 400 page and a log line;
    // Node's own check would answer first with an empty chunked 400.
    requireHostHeader: false
  }
  const server = listen.tls === undefined
    ? http.createServer(options)
    : createTlsServer(listen, (tlsOptions) => https.createServer({ ...options, ...tlsOptions, ...(listen.http2 ? { ALPNProtocols: H2_ALPN } : {}) }))
  // One more than allowed, so request-head.ts sees that there were too many instead of Node dropping them.
  server.maxHeadersCount = limits.maxHeaders + 1
  return server
}

/** Whether a live process accepts connections on the socket file. */
export function socketInUse (path: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect(path)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

/** Throws "in use" when a live process listens on the socket file; returns whether a stale file is there. */
async function checkSocketFile (path: string): Promise<boolean> {
  if (!fs.existsSync(path)) return false
  if (await socketInUse(path)) throw new ListenError(`unix:${path}`, 'address already in use')
  return true
}

function listenOptions (listen: ResolvedListen): net.ListenOptions {
  return listen.kind === 'unix'
    ? { path: listen.path }
    : { host: listen.host, port: listen.port, ipv6Only: listen.host.includes(':') && listen.ipv6Only }
}

function listenOn (server: net.Server, listen: ResolvedListen): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new ListenError(listen.key, REASONS[err.code ?? ''] ?? err.message, { cause: err }))
    })
    server.listen(listenOptions(listen), () => resolve())
  })
}

/** What `proxyctl check` does for each address, as `nginx -t` does: bind it, then let go. */
export async function probeListen (listen: ResolvedListen): Promise<void> {
  if (listen.kind === 'unix') {
    await checkSocketFile(listen.path)
    return
  }
  if (listen.port === 0) return
  const probe = net.createServer()
  await listenOn(probe, listen)
  await new Promise((resolve) => probe.close(resolve))
}

/**
 * What a listener does with its requests for one app (one config generation): the request,
 * upgrade, client-error and CONNECT handlers, and how many of its requests are in flight. A
 * reload gives a kept listener the new app's handlers (BoundListener.swap); requests already
 * dispatched finish on the old ones.
 */
interface Wiring {
  readonly app: ProxyApp
  readonly listen: ResolvedListen
  readonly onRequest: (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => void
  readonly onUpgrade: (req: RoutedRequest, socket: Duplex, head: Buffer) => void
  readonly onClientError: (err: Error, socket: Duplex) => void
  readonly onConnect: (req: IncomingMessage, socket: Duplex) => void
  /** Requests dispatched through this wiring whose answer is not over (tunnels are the handler's: not counted). */
  inflight: number
}

export interface BoundListener {
  /** The listen address as the config in force resolves it. */
  readonly listen: ResolvedListen
  readonly server: http.Server
  /** `http://127.0.0.1:8080`, `https://[::1]:8443`, `unix:/run/p.sock`. */
  readonly url: string
  /** The port actually bound (differs from the config when it asked for port 0 in tests). */
  readonly port: number
  /** The HTTP/2 sessions' side, when the address serves HTTP/2. */
  readonly http2: Http2Front | undefined
  /**
   * A reload: new requests go to `app` with `listen` (the same address in the new config, its
   * certificates re-read) from now on. Resolves once the requests the previous app took are
   * over, or after `graceMs`.
   */
  swap (app: ProxyApp, listen: ResolvedListen, graceMs: number): Promise<void>
}

/** Why a bound address cannot take a new config in place (undefined: it can). */
export function swapRefusal (bound: ResolvedListen, next: ResolvedListen): string | undefined {
  if ((bound.tls === undefined) !== (next.tls === undefined)) return 'TLS on or off'
  if (bound.http2 !== next.http2) return 'HTTP/2 on or off'
  if (bound.ipv6Only !== next.ipv6Only) return 'ipv6Only'
  const a = bound.defaultServer.limits.largeClientHeaderBuffers
  const b = next.defaultServer.limits.largeClientHeaderBuffers
  if (a.number !== b.number || a.size !== b.size) return 'largeClientHeaderBuffers of its default server'
  return undefined
}

/**
 * Binds one listen address and routes its requests into the app. Whatever handling one request
 * or connection throws ends that request or connection (guard.ts), never the process.
 */
export async function bindListener (app: ProxyApp, listen: ResolvedListen): Promise<BoundListener> {
  const server = createServer(listen)
  const metrics = app.config.metrics
  const rejections = metrics.on ? coreFamilies(metrics.registry).limitRejections : undefined
  const rejected = rejections === undefined ? undefined : (limit: string): void => { rejections.child(limit, '').inc() }
  // The connections are the socket's, not a config's: kept across reloads (their numbers and bytes go on).
  const connections = new ClientConnections(listen, app.fastify.log, sendSweepInterval(app.config), rejected)
  const stopCollecting = metrics.on ? collectConnections(metrics.registry, listen, server, connections) : undefined
  server.once('close', () => { connections.close(); stopCollecting?.() })
  let w = wire(app, listen, server, connections)
  server.on('request', (req, res) => { w.onRequest(req, res, false) })
  // With this listener Node leaves the 100 to us: none before a 413.
  server.on('checkContinue', (req, res) => { w.onRequest(req, res, true) })
  server.on('upgrade', (req: RoutedRequest, socket, head) => { w.onUpgrade(req, socket, head) })
  server.on('clientError', (err, socket) => { w.onClientError(err, socket) })
  server.on('connect', (req: IncomingMessage, socket: Duplex) => { w.onConnect(req, socket) })
  const http2 = listen.http2 ? attachHttp2(server, listen, (req, res, expectsContinue) => { w.onRequest(req, res, expectsContinue) }, app.fastify.log) : undefined
  // A socket file left by a dead process is removed; one with a live listener is "in use".
  // Cluster workers share the primary's socket, which cleared stale files before forking.
  if (listen.kind === 'unix' && !cluster.isWorker && await checkSocketFile(listen.path)) fs.unlinkSync(listen.path)
  await listenOn(server, listen)
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  const url = listen.kind === 'unix'
    ? `unix:${listen.path}`
    : `${listen.scheme}://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}`
  const bound: BoundListener = {
    listen,
    server,
    url,
    port,
    http2,
    async swap (next, nextListen, graceMs) {
      // Certificates first: a TLS handshake from now on gets the new config's.
      if (nextListen.tls !== undefined) updateTlsServer(server as unknown as tls.Server, nextListen)
      server.keepAliveTimeout = nodeKeepAliveTimeout(nextListen.defaultServer.limits.keepaliveTimeout)
      server.headersTimeout = nextListen.defaultServer.limits.clientHeaderTimeout
      server.maxHeadersCount = nextListen.defaultServer.limits.maxHeaders + 1
      const old = w
      w = wire(next, nextListen, server, connections)
      ;(bound as { listen: ResolvedListen }).listen = nextListen
      await drained(old, graceMs)
    }
  }
  return bound
}

/** Resolves when `w` has no request in flight, or after `graceMs`. */
async function drained (w: Wiring, graceMs: number): Promise<void> {
  const deadline = Date.now() + graceMs
  while (w.inflight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25))
}

/** The handlers of one app on one listener (see Wiring). */
function wire (app: ProxyApp, listen: ResolvedListen, server: http.Server, connections: ClientConnections): Wiring {
  const dispatch = app.dispatch
  const log = app.fastify.log
  const metrics = app.config.metrics
  const metered = metrics.on
  const rejections = metered ? coreFamilies(metrics.registry).limitRejections : undefined
  const rejected = rejections === undefined ? undefined : (limit: string): void => { rejections.child(limit, '').inc() }
  // The access line is written and the metrics counted when the answer is over; one listener
  // function per listener, none when neither is on.
  const logging = app.accessLogs.active
  const observing = logging || metered
  const fallbackLog = listen.defaultServer.accessLog
  const fallbackServer = listen.defaultServer
  const logLine = !metered
    ? (r: ExchangeRecord): void => { writeAccessLine(r, fallbackLog) }
    : (r: ExchangeRecord): void => {
        if (logging) writeAccessLine(r, fallbackLog)
        meterRequest(r, r.status, r.end, fallbackServer)
      }
  const onAnswered = logging
    ? function (this: ServerResponse): void {
      const r = (this as RecordedResponse)[kRecord] as ExchangeRecord
      if (r.tunneled) return
      r.complete(this)
      logLine(r)
    }
    // Metrics alone need the status and the time, not the bytes (the socket's bytesWritten getter copies its queue).
    : function (this: ServerResponse): void {
      const r = (this as RecordedResponse)[kRecord] as ExchangeRecord
      if (r.tunneled) return
      meterRequest(r, r.loggedStatus !== 0 ? r.loggedStatus : this.headersSent ? this.statusCode : 499, Date.now(), fallbackServer)
    }
  // One function per wiring (no closure per request): a reload waits for this count to reach 0.
  // With an access log or metrics on, the same listener also counts the request over.
  const onOver = observing
    ? function (this: ServerResponse): void { wiring.inflight--; if ((this as RecordedResponse)[kRecord] !== undefined) onAnswered.call(this) }
    : function (): void { wiring.inflight-- }
  const serve = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void => {
    const target = req.url
    wiring.inflight++
    res.on('close', onOver)
    try {
      const stream = req.httpVersionMajor === 2 ? (req as { stream?: Http2ServerRequest['stream'] }).stream : undefined
      // An HTTP/2 request's record reads the connection's own socket (address, TLS); its bytes are its stream's (H2Response counts them).
      const connection = stream === undefined ? undefined : connectionSocketOf(stream.session)
      const record = new ExchangeRecord(connection ?? req.socket, req, target ?? '', logging && stream === undefined ? req.socket.bytesWritten : 0)
      ;(res as RecordedResponse)[kRecord] = record
      if (observing) record.log = logLine
      const route = routeRequest(req, listen, dispatch)
      const ctx = (req as RoutedRequest)[kRequestContext]
      if (ctx !== undefined) { ctx.record = record; record.ctx = ctx }
      const limits = ctx === undefined ? listen.defaultServer.limits : (ctx.location ?? ctx.server).limits
      if (stream !== undefined) connections.servedH2(limits, connection, record)
      else connections.served(limits, req.socket, res, record)
      // clientMaxBodySize and Expect: 100-continue, before the fast path and Fastify alike.
      if (expectsContinue || req.headers['content-length'] !== undefined) {
        const refused = checkRequestBody(req, res, expectsContinue)
        if (refused !== undefined) { req.url = refused; dispatch(req, res); return }
      }
      const fast = ctx?.location?.fastPath
      if (fast !== undefined && ctx !== undefined) {
        fast(ctx, req, res)
        return
      }
      req.url = route
      dispatch(req, res)
    } catch (err) {
      failRequest(log, req, res, target, err)
    }
  }
  const onRequest = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void => {
    // One request at a time per connection, as nginx: a pipelined request waits until the answer
    // before it is complete (Node hands it the socket then), so it reaches no upstream earlier
    // and out of order.
    if (res.socket === null) res.once('socket', () => { serve(req, res, expectsContinue) })
    else serve(req, res, expectsContinue)
  }
  const onUpgrade = (req: RoutedRequest, socket: Duplex, head: Buffer): void => {
    const target = req.url
    try {
      acceptUpgrade(server, req, socket, head, (req, res) => {
        try {
          const record = new ExchangeRecord(req.socket, req, req.url ?? '', logging ? req.socket.bytesWritten : 0)
          ;(res as RecordedResponse)[kRecord] = record
          if (observing) { record.log = logLine; res.on('close', onAnswered) }
          connections.identify(req.socket, listen.defaultServer.limits, record)
          const refused = upgradeBodyError(req)
          req.url = refused === undefined ? routeRequest(req, listen, dispatch) : refuseRequest(req, new BadRequestError(refused))
          const ctx = (req as RoutedRequest)[kRequestContext]
          if (ctx !== undefined) { ctx.record = record; record.ctx = ctx }
          dispatch(req, res)
        } catch (err) {
          failRequest(log, req, res, target, err)
        }
      })
    } catch (err) {
      failConnection(log, req, socket, target, err)
    }
  }
  // What the front door answers on the socket itself (parser refusals, CONNECT) is logged too, in the default server's log.
  const logRefusal = observing
    ? (socket: Socket, req: IncomingMessage | undefined, target: string, status: number, head: number, before: number): void => {
        const r = new ExchangeRecord(socket, req, target, before)
        r.connection = nextConnectionId()
        r.completeRaw(status, head)
        logLine(r)
      }
    : undefined
  const wiring: Wiring = {
    app,
    listen,
    onRequest,
    onUpgrade,
    onClientError: (err, socket) => { answerClientError(log, err, socket, listen.defaultServer.limits, logRefusal, rejected) },
    onConnect: (req, socket) => { refuseConnect(log, req, socket, logRefusal) },
    inflight: 0
  }
  return wiring
}

/** The listener's connections by state and its bytes, counted at each scrape (nothing per request). */
function collectConnections (registry: MetricsRegistry, listen: ResolvedListen, server: net.Server, connections: ClientConnections): () => void {
  const f = coreFamilies(registry)
  const reading = f.connections.child(listen.key, 'reading')
  const writing = f.connections.child(listen.key, 'writing')
  const waiting = f.connections.child(listen.key, 'waiting')
  const received = f.bytesIn.child(listen.key)
  const sent = f.bytesOut.child(listen.key)
  return registry.onCollect(() => {
    // net.Server counts every connection it holds, those that have sent no request yet too.
    const n = server.listening ? (server as net.Server & { _connections: number })._connections : 0
    const c = connections.figures(n)
    reading.set(c.reading)
    writing.set(c.writing)
    waiting.set(c.waiting)
    received.value = c.received
    sent.value = c.sent
  })
}

/**
 * Stops accepting, lets in-flight requests finish for up to `graceMs`, then cuts what is left.
 * Keep-alive connections are closed as soon as they go idle.
 */
export async function closeListeners (listeners: readonly BoundListener[], graceMs: number): Promise<void> {
  const closed = listeners.map(({ server, http2 }) => new Promise<void>((resolve) => {
    server.close(() => resolve())
    http2?.close()
    server.on('request', (_req, res) => { res.setHeader('connection', 'close') })
  }))
  const reaper = setInterval(() => { for (const { server } of listeners) server.closeIdleConnections() }, 50)
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      for (const { server, http2 } of listeners) { server.closeAllConnections(); http2?.destroy() }
      resolve()
    }, graceMs)
  })
  await Promise.race([Promise.all(closed), deadline])
  clearInterval(reaper)
  clearTimeout(timer)
}
