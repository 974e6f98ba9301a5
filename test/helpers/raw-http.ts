/**
 * Byte-exact HTTP for the proxy tests, where node:http would get in the way:
 *  - `startRawUpstream`: a TCP/unix upstream that records each request line and header lines as
 *    received (a request line with a space or raw 8-bit bytes too, which node:http refuses) and
 *    answers with bytes you choose (any hop-by-hop header, chunked framing, no Date...). Keeps the
 *    connection alive between requests, as an HTTP/1.1 server does.
 *  - `exchange`: one request as raw bytes on a fresh connection (`Connection: close` added), the
 *    response parsed with its header lines kept in order and case, its body decoded and its raw
 *    bytes kept.
 */
import fs from 'node:fs'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { rawExchange, type Target } from './proxy.js'

interface Teardown { teardown (fn: () => unknown): void }

export interface RawRequest {
  /** The request line as received, e.g. `GET /a b HTTP/1.1`. */
  line: string
  method: string
  /** Between the first and the last space of the line (nginx-compare.ts reads it the same way). */
  target: string
  /** Header lines in order, as `[name, value]` with the name's case kept. */
  headers: Array<[string, string]>
  body: Buffer
}

/** Header values of `name` (any case), in order. */
export function headerValues (headers: Array<[string, string]>, name: string): string[] {
  const lower = name.toLowerCase()
  return headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v)
}

/** What a responder returns: the raw response bytes; `close` ends the connection after them. */
export type RawReply = string | Buffer | { bytes: string | Buffer, close?: boolean }
export type RawResponder = (req: RawRequest) => RawReply

/** Answers 200 with `{ line, target, headers }` as JSON. */
export const lineEcho: RawResponder = (req) => {
  const body = JSON.stringify({ line: req.line, target: req.target, headers: req.headers, bodyBytes: req.body.length })
  return `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`
}

export interface RawUpstream {
  /** `127.0.0.1:PORT`, `[::1]:PORT` or `unix:/path`. */
  readonly address: string
  readonly seen: RawRequest[]
  respond: RawResponder
}

/** `listen`: `{ host?, port? }` (127.0.0.1 by default) or `{ path }`. Closed when the test ends. */
export async function startRawUpstream (t: Teardown, listen: { host?: string, port?: number } | { path: string } = {}, respond: RawResponder = lineEcho): Promise<RawUpstream> {
  const sockets = new Set<net.Socket>()
  const up: RawUpstream = { address: '', seen: [], respond }
  const server = net.createServer((sock) => {
    sockets.add(sock)
    sock.on('close', () => sockets.delete(sock))
    sock.on('error', () => {})
    let buf = Buffer.alloc(0)
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        const parsed = parseRequest(buf)
        if (parsed === undefined) return
        buf = buf.subarray(parsed.used)
        up.seen.push(parsed.req)
        const reply = up.respond(parsed.req)
        const { bytes, close } = typeof reply === 'object' && !Buffer.isBuffer(reply) ? reply : { bytes: reply, close: false }
        sock.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes)
        if (close === true) { sock.end(); return }
      }
    })
  })
  const spec = 'path' in listen ? listen : { host: listen.host ?? '127.0.0.1', port: listen.port ?? 0 }
  if ('path' in spec) { try { fs.unlinkSync(spec.path) } catch {} }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(spec, () => resolve())
  })
  if ('path' in spec) (up as { address: string }).address = `unix:${spec.path}`
  else {
    const a = server.address() as AddressInfo
    ;(up as { address: string }).address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
  }
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return up
}

function parseRequest (buf: Buffer): { req: RawRequest, used: number } | undefined {
  const end = buf.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n')
  const line = lines[0] as string
  const headers: Array<[string, string]> = lines.slice(1).map(h => {
    const c = h.indexOf(':')
    return [h.slice(0, c), h.slice(c + 1).trim()]
  })
  let used = end + 4
  let body: Buffer = Buffer.alloc(0)
  const cl = headerValues(headers, 'content-length')[0]
  const te = headerValues(headers, 'transfer-encoding')[0]
  if (te !== undefined && /chunked/i.test(te)) {
    const parts: Buffer[] = []
    let pos = used
    for (;;) {
      const eol = buf.indexOf('\r\n', pos)
      if (eol === -1) return undefined
      const size = parseInt(buf.subarray(pos, eol).toString('latin1'), 16)
      if (size === 0) {
        const trailerEnd = buf.indexOf('\r\n\r\n', eol)
        if (trailerEnd === -1) return undefined
        used = trailerEnd + 4
        break
      }
      if (buf.length < eol + 2 + size + 2) return undefined
      parts.push(buf.subarray(eol + 2, eol + 2 + size))
      pos = eol + 2 + size + 2
    }
    body = Buffer.concat(parts)
  } else if (cl !== undefined) {
    const n = Number(cl)
    if (buf.length < used + n) return undefined
    body = buf.subarray(used, used + n)
    used += n
  }
  const sp1 = line.indexOf(' ')
  const sp2 = line.lastIndexOf(' ')
  return { req: { line, method: line.slice(0, sp1), target: line.slice(sp1 + 1, sp2), headers, body }, used }
}

export interface ParsedResponse {
  status: number
  /** The status line and header lines as sent. */
  head: string
  headers: Array<[string, string]>
  /** The body, de-chunked, as latin1 text. */
  body: string
  /** Everything after the header block, as sent (chunk framing included). */
  rawBody: string
  /** The whole response, as received. */
  raw: string
}

/**
 * Sends one request, byte for byte: `METHOD TARGET HTTP/1.1`, the given header lines (Host
 * first unless `host: null`), `Connection: close` (unless a Connection header is given: then it
 * must say close), then `body`. Returns the parsed response.
 */
export async function exchange (to: Target, target: string, opts: { method?: string, host?: string | null, headers?: Array<[string, string]>, body?: string, version?: string, ms?: number } = {}): Promise<ParsedResponse> {
  const method = opts.method ?? 'GET'
  let head = `${method} ${target} ${opts.version ?? 'HTTP/1.1'}\r\n`
  if (opts.host !== null) head += `Host: ${opts.host ?? 'localhost'}\r\n`
  for (const [n, v] of opts.headers ?? []) head += `${n}: ${v}\r\n`
  if (!(opts.headers ?? []).some(([n]) => /^connection$/i.test(n))) head += 'Connection: close\r\n'
  if (opts.body !== undefined && !(opts.headers ?? []).some(([n]) => /^(content-length|transfer-encoding)$/i.test(n))) {
    head += `Content-Length: ${Buffer.byteLength(opts.body, 'latin1')}\r\n`
  }
  const raw = await rawExchange(to, head + '\r\n' + (opts.body ?? ''), opts.ms ?? 5000)
  return parseResponse(raw, method)
}

/** Parses one raw response (`method` says whether a body may follow); 1xx heads before it are skipped. */
export function parseResponse (raw: string, method = 'GET'): ParsedResponse {
  while (/^HTTP\/1\.\d 1\d\d /.test(raw)) raw = raw.slice(raw.indexOf('\r\n\r\n') + 4)
  const end = raw.indexOf('\r\n\r\n')
  if (end === -1) throw new Error(`no complete response head in ${JSON.stringify(raw)}`)
  const head = raw.slice(0, end)
  const lines = head.split('\r\n')
  const status = Number(/^HTTP\/1\.\d (\d{3})/.exec(lines[0] as string)?.[1])
  const headers: Array<[string, string]> = lines.slice(1).map(h => {
    const c = h.indexOf(':')
    return [h.slice(0, c), h.slice(c + 1).trim()]
  })
  const rawBody = raw.slice(end + 4)
  let body = rawBody
  const noBody = method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)
  if (noBody) body = ''
  else if (headerValues(headers, 'transfer-encoding').some(v => /chunked/i.test(v))) {
    body = ''
    let pos = 0
    for (;;) {
      const eol = rawBody.indexOf('\r\n', pos)
      if (eol === -1) throw new Error(`bad chunked body ${JSON.stringify(rawBody)}`)
      const size = parseInt(rawBody.slice(pos, eol), 16)
      if (Number.isNaN(size)) throw new Error(`bad chunk size in ${JSON.stringify(rawBody)}`)
      if (size === 0) break
      body += rawBody.slice(eol + 2, eol + 2 + size)
      if (rawBody.slice(eol + 2 + size, eol + 4 + size) !== '\r\n') throw new Error(`bad chunk end in ${JSON.stringify(rawBody)}`)
      pos = eol + 4 + size
    }
  } else {
    const cl = headerValues(headers, 'content-length')[0]
    if (cl !== undefined) body = rawBody.slice(0, Number(cl))
  }
  return { status, head, headers, body, rawBody, raw }
}
