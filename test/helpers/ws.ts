/**
 * WebSocket test helpers: real `ws` upstreams on 127.0.0.1 or a unix socket (echo by default,
 * recording each handshake's request), clients with promise helpers, and raw handshakes for
 * tests that need the bytes (half-close, slow readers). Everything is closed when the test ends.
 */
import crypto from 'node:crypto'
import http from 'node:http'
import type net from 'node:net'
import { WebSocket, WebSocketServer, type RawData, type ServerOptions } from 'ws'
import type { Teardown } from './lifecycle.js'
import { rawConnection } from './raw-http.js'
import { listenOn } from './upstream.js'

export interface WsUpstream {
  /** `127.0.0.1:PORT` or `unix:/path`: what an upstream config lists. */
  readonly address: string
  /** `http://127.0.0.1:PORT` or `http://unix:/path:` for `websocket('...')` directly. */
  readonly target: string
  readonly wss: WebSocketServer
  readonly server: http.Server
  /** Handshake requests seen (url, headers). */
  readonly seen: http.IncomingMessage[]
  /** Server-side WebSockets currently open. */
  readonly clients: Set<WebSocket>
  /** Raw sockets accepted (any state). */
  readonly sockets: Set<net.Socket>
  /** Cuts every connection and closes the listener, as a crash would. */
  kill (): Promise<void>
}

export interface WsUpstreamOptions extends Omit<ServerOptions, 'noServer' | 'server' | 'port'> {
  /** Called for each accepted connection; default: echo every message back as received. */
  onConnection?: (ws: WebSocket, req: http.IncomingMessage) => void
  /** Answer the handshake yourself (return true when you did), e.g. a 401. */
  onUpgrade?: (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => boolean
  /** Extra 101 headers (e.g. Set-Cookie). */
  headers?: string[]
}

export const echoConnection = (ws: WebSocket): void => {
  ws.on('message', (data: RawData, isBinary: boolean) => { ws.send(data as Buffer, { binary: isBinary }) })
}

/** A `ws` upstream; `listen` is `{ port: 0 }` (127.0.0.1) or `{ path }`. */
export async function startWsUpstream (t: Teardown, listen: { port?: number } | { path: string }, options: WsUpstreamOptions = {}): Promise<WsUpstream> {
  const { onConnection = echoConnection, onUpgrade, headers: extra, ...wsOptions } = options
  const server = http.createServer((req, res) => { res.end(`plain ${req.method} ${req.url}`) })
  const wss = new WebSocketServer({ noServer: true, ...wsOptions })
  const seen: http.IncomingMessage[] = []
  const clients = new Set<WebSocket>()
  const sockets = new Set<net.Socket>()
  if (extra !== undefined) wss.on('headers', (h) => { h.push(...extra) })
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    seen.push(req)
    socket.on('error', () => {})
    if (onUpgrade?.(req, socket, head) === true) return
    wss.handleUpgrade(req, socket, head, (ws) => {
      clients.add(ws)
      ws.on('close', () => clients.delete(ws))
      ws.on('error', () => {})
      onConnection(ws, req)
    })
  })
  const address = await listenOn(server, 'path' in listen ? { path: listen.path } : { port: listen.port ?? 0 })
  const target = 'path' in listen ? `http://unix:${listen.path}:` : `http://${address}`
  let killed = false
  const kill = async (): Promise<void> => {
    if (killed) return
    killed = true
    for (const s of sockets) s.destroy()
    for (const c of wss.clients) c.terminate()
    wss.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  t.teardown(kill)
  return { address, target, wss, server, seen, clients, sockets, kill }
}

/** Opens a client; rejects on error or an unexpected response. Terminated when the test ends. */
export function openWs (t: Teardown, url: string, protocols: string | string[] = [], options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, options)
  ws.on('error', () => {})
  t.teardown(() => ws.terminate())
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)))
  })
}

/** The next message of a client. */
export function nextMessage (ws: WebSocket, ms = 10_000): Promise<{ data: Buffer, binary: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message in time')), ms)
    ws.once('message', (data: RawData, binary: boolean) => { clearTimeout(timer); resolve({ data: data as Buffer, binary }) })
  })
}

/** Resolves with the close code and reason (1006 for a cut connection). */
export function closed (ws: WebSocket, ms = 10_000): Promise<{ code: number, reason: string }> {
  return new Promise((resolve, reject) => {
    if (ws.readyState === WebSocket.CLOSED) { resolve({ code: 1006, reason: '' }); return }
    const timer = setTimeout(() => reject(new Error('not closed in time')), ms)
    ws.once('close', (code: number, reason: Buffer) => { clearTimeout(timer); resolve({ code, reason: reason.toString() }) })
  })
}

/** `ws://host:port` of a proxy listener URL (`http://...`). */
export function wsUrl (httpUrl: string, path: string): string {
  return httpUrl.replace(/^http/, 'ws') + path
}

export interface RawHandshake {
  socket: net.Socket
  /** The response head as received. */
  head: string
  /** Bytes received after the head. */
  rest: Buffer
}

/** A WebSocket handshake on a raw socket (no frame handling): for byte-level tests. */
export async function rawHandshake (t: Teardown, target: { port: number, host?: string } | { path: string }, path: string, headers: Record<string, string> = {}): Promise<RawHandshake> {
  const c = rawConnection(t, 'path' in target ? { socketPath: target.path } : target)
  const key = crypto.randomBytes(16).toString('base64')
  const lines = [`GET ${path} HTTP/1.1`, 'Host: proxy.test', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', `Sec-WebSocket-Key: ${key}`]
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`)
  c.write(lines.join('\r\n') + '\r\n\r\n')
  if (!await c.until(/\r\n\r\n/, 10_000)) throw new Error(c.closed ? 'connection closed before the handshake answer' : 'no handshake answer in time')
  c.socket.pause()
  c.release()
  const got = c.take()
  const end = got.indexOf('\r\n\r\n')
  return { socket: c.socket, head: got.slice(0, end), rest: Buffer.from(got.slice(end + 4), 'latin1') }
}

/** A raw upstream that completes WebSocket handshakes itself and hands you the socket (no frames parsed). */
export async function startRawWsUpstream (t: Teardown, onSocket: (socket: net.Socket, req: http.IncomingMessage, head: Buffer) => void): Promise<WsUpstream> {
  return startWsUpstream(t, { port: 0 }, {
    onUpgrade (req, socket, head) {
      const accept = crypto.createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
      onSocket(socket, req, head)
      return true
    }
  })
}
