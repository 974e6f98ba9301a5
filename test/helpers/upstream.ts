/**
 * Real upstream servers for tests: node:http on 127.0.0.1, [::1] or a unix socket, that echo
 * what they received (method, url, headers, body size) as JSON, or run a handler you give.
 * Each can be stopped and started again on the same address mid-test.
 */
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
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
export async function startUpstream (t: Teardown, name: string, listen: { host?: string, port?: number } | { path: string }, handler: UpstreamHandler = echo): Promise<Upstream> {
  const sockets = new Set<Socket>()
  let server: http.Server | undefined
  let address = ''
  const spec = 'path' in listen ? listen : { host: listen.host ?? '127.0.0.1', port: listen.port ?? 0 }
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
      if ('path' in spec) { try { fs.unlinkSync(spec.path) } catch {} }
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(spec, () => resolve())
      })
      server = s
      if ('path' in spec) address = `unix:${spec.path}`
      else {
        const a = s.address() as AddressInfo
        // Restart on the same port.
        ;(spec as { port: number }).port = a.port
        address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
      }
    }
  }
  await up.start()
  t.teardown(() => up.stop())
  return up
}
