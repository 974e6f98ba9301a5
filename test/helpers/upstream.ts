/**
 * Real upstream servers for tests: node:http on 127.0.0.1, [::1] or a unix socket, that echo
 * what they received (method, url, headers, body size) as JSON, or run a handler you give.
 * Each can be stopped and started again on the same address mid-test.
 */
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo, Server, Socket } from 'node:net'
import type { Teardown } from './lifecycle.js'

export interface EchoReply {
  name: string
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  rawHeaders: string[]
  bodyBytes: number
}

export interface Upstream {
  readonly name: string
  /** `127.0.0.1:PORT`, `[::1]:PORT` or `unix:/path`: what an upstream config lists. */
  readonly address: string
  /** Requests seen since start (or since `reset()`). */
  readonly seen: EchoReply[]
  /** Sockets open to this upstream right now. */
  readonly sockets: Set<Socket>
  reset (): void
  /** Closes the listener and cuts every connection (as a crash would). */
  stop (): Promise<void>
  /** Listens again on the same address. */
  start (): Promise<void>
}

/**
 * Where a test server listens: `{ host?, port? }` (127.0.0.1 and a free port unless given), or
 * `{ path }`, a unix socket (a file left there is removed first).
 */
export type Listen = { host?: string, port?: number } | { path: string }

/**
 * Listens on `listen`; resolves with the address as an upstream config lists it: `127.0.0.1:PORT`,
 * `[::1]:PORT` or `unix:/path`. Rejects if the server cannot listen.
 */
export async function listenOn (server: Server, listen: Listen): Promise<string> {
  const spec = 'path' in listen ? listen : { host: listen.host ?? '127.0.0.1', port: listen.port ?? 0 }
  if ('path' in spec) { try { fs.unlinkSync(spec.path) } catch {} }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(spec, () => resolve())
  })
  if ('path' in spec) return `unix:${spec.path}`
  const a = server.address() as AddressInfo
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
}

export type UpstreamHandler = (req: http.IncomingMessage, res: http.ServerResponse, up: Upstream) => void

/** Echoes the request as JSON (after reading the whole body). */
export const echo: UpstreamHandler = (req, res, up) => {
  let bodyBytes = 0
  req.on('data', (d: Buffer) => { bodyBytes += d.length })
  req.on('end', () => {
    const reply: EchoReply = { name: up.name, method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes }
    up.seen.push(reply)
    const body = JSON.stringify(reply)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-upstream': up.name })
    res.end(body)
  })
}

/**
 * Starts an upstream. `listen`: `{ port: 0 }` (127.0.0.1), `{ host: '::1', port: 0 }` or
 * `{ path: '/tmp/x.sock' }`. Stopped when the test ends.
 */
export async function startUpstream (t: Teardown, name: string, listen: Listen, handler: UpstreamHandler = echo): Promise<Upstream> {
  const sockets = new Set<Socket>()
  let server: http.Server | undefined
  let address = ''
  let spec = listen
  const up: Upstream = {
    name,
    get address () { return address },
    seen: [],
    sockets,
    reset () { up.seen.length = 0 },
    async stop () {
      if (server === undefined) return
      const s = server
      server = undefined
      for (const sock of sockets) sock.destroy()
      await new Promise<void>((resolve) => s.close(() => resolve()))
    },
    async start () {
      if (server !== undefined) return
      const s = http.createServer((req, res) => handler(req, res, up))
      s.keepAliveTimeout = 60_000
      s.on('connection', (sock) => { sockets.add(sock); sock.on('close', () => sockets.delete(sock)) })
      address = await listenOn(s, spec)
      server = s
      // Restart on the same port.
      if (!('path' in spec)) spec = { ...spec, port: (s.address() as AddressInfo).port }
    }
  }
  await up.start()
  t.teardown(() => up.stop())
  return up
}
