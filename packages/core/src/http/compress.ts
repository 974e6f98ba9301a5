/**
 * nginx's gzip filter, decided once per answer from its head: whether the answer may be
 * compressed at all (status, Content-Encoding, Content-Length, type), then whether this
 * client gets it (Accept-Encoding, HTTP version, gzip_proxied). The callers (the onSend step in
 * app.ts, the proxy's downstream) change the head and stream the body through `encoder`.
 */
import type { IncomingMessage } from 'node:http'
import zlib from 'node:zlib'
import { pipeline, Readable, type Transform } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Coding, ResolvedCompress } from '../config/compress.js'

/** What the filter reads of an answer's head. `header`: a response header's value (lower-case name). */
export interface CompressibleHead {
  readonly status: number
  readonly header: (name: string) => string | undefined
}

/**
 * undefined: the answer is not for the filter (sent as is, no Vary); 'identity': it could be
 * compressed but not for this request (Vary still goes when `vary`); else the coding to use.
 */
export function compressionFor (c: ResolvedCompress, req: IncomingMessage, head: CompressibleHead): Coding | 'identity' | undefined {
  const status = head.status
  // ngx_http_gzip_header_filter: 200, 403 and 404 only. A HEAD answer's head is changed as a
  // GET's (nginx marks it header_only after this filter).
  if (status !== 200 && status !== 403 && status !== 404) return undefined
  const encoding = head.header('content-encoding')
  if (encoding !== undefined && encoding !== '') return undefined
  const length = head.header('content-length')
  if (length !== undefined && Number(length) < c.minLength) return undefined
  // ngx_http_test_content_type: '*' takes any answer, one without a type too.
  if (!c.types.has('*')) {
    const type = head.header('content-type')
    if (type === undefined || type === '') return undefined
    const semi = type.indexOf(';')
    if (!c.types.has((semi === -1 ? type : type.slice(0, semi)).trim().toLowerCase())) return undefined
  }
  // ngx_http_gzip_ok: gzip_http_version 1.1 (an HTTP/1.0 client gets it as is).
  if (req.httpVersionMinor === 0 && req.httpVersionMajor === 1) return 'identity'
  const coding = chooseCoding(req.headers['accept-encoding'], c.encodings)
  if (coding === undefined) return 'identity'
  if (req.headers.via !== undefined && !proxiedAllowed(c.proxied, req, head)) return 'identity'
  return coding
}

/**
 * The coding among `offered` the client accepts with the highest q (a tie: the first offered).
 * As nginx: a coding counts only when named (no `*`), and q=0 refuses it.
 */
export function chooseCoding (accept: string | undefined, offered: readonly Coding[]): Coding | undefined {
  if (accept === undefined || accept === '') return undefined
  let best: Coding | undefined
  let bestQ = 0
  for (const part of accept.split(',')) {
    const semi = part.indexOf(';')
    const name = (semi === -1 ? part : part.slice(0, semi)).trim().toLowerCase()
    const coding = name === 'gzip' || name === 'br' ? name : undefined
    if (coding === undefined || !offered.includes(coding)) continue
    const q = semi === -1 ? 1 : quality(part.slice(semi + 1))
    if (q > bestQ || (q === bestQ && q > 0 && best !== undefined && offered.indexOf(coding) < offered.indexOf(best))) { best = coding; bestQ = q }
  }
  return best
}

/** The q parameter (RFC 9110 §12.4.2): 0 to 1, three decimals; malformed counts as 0 (refused), as nginx. */
function quality (params: string): number {
  for (const p of params.split(';')) {
    const m = /^\s*q\s*=\s*(\S*)\s*$/i.exec(p)
    if (m === null) continue
    const v = m[1] as string
    if (!/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v)) return 0
    return Number(v)
  }
  return 1
}

/** ngx_http_gzip_ok's gzip_proxied rules, for a request with Via. */
function proxiedAllowed (rules: ReadonlySet<string>, req: IncomingMessage, head: CompressibleHead): boolean {
  if (rules.size === 0) return false
  if (rules.has('any')) return true
  if (rules.has('auth') && req.headers.authorization !== undefined) return true
  const expires = head.header('expires')
  if (expires !== undefined) {
    if (!rules.has('expired')) return false
    const at = Date.parse(expires)
    if (Number.isNaN(at)) return false
    const date = head.header('date')
    const now = date === undefined ? Date.now() : Date.parse(date)
    return at < now
  }
  const cc = head.header('cache-control')
  if (cc !== undefined) {
    const lower = cc.toLowerCase()
    for (const rule of ['no-cache', 'no-store', 'private']) if (rules.has(rule) && lower.includes(rule)) return true
    return false
  }
  if (rules.has('no_last_modified') && head.header('last-modified') !== undefined) return false
  if (rules.has('no_etag') && head.header('etag') !== undefined) return false
  return true
}

/** ngx_http_weak_etag: a strong ETag becomes weak; one that is not a quoted tag is dropped (undefined). */
export function weakEtag (etag: string): string | undefined {
  if (etag.startsWith('W/')) return etag
  return etag.startsWith('"') ? `W/${etag}` : undefined
}

/** The stream that compresses a body with `coding` at `level` (gzip's level, brotli's quality). */
export function encoder (coding: Coding, level: number): Transform {
  return coding === 'gzip'
    ? zlib.createGzip({ level })
    : zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level, [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT } })
}

/**
 * The filter on a Fastify answer (static files, respond(), error pages), from app.ts's onSend:
 * the head changed as nginx's (Content-Encoding, no Content-Length or Accept-Ranges, a weak ETag,
 * Vary) and the payload returned as the stream that compresses it (sent chunked, with
 * backpressure); unchanged when the answer is not compressed.
 */
export function compressReply (c: ResolvedCompress, request: FastifyRequest, reply: FastifyReply, payload: unknown): unknown {
  const header = (name: string): string | undefined => {
    const v = reply.getHeader(name)
    if (v !== undefined) return Array.isArray(v) ? v.join(', ') : String(v)
    // Fastify counts a string or Buffer body after onSend.
    if (name === 'content-length') {
      if (typeof payload === 'string') return String(Buffer.byteLength(payload))
      if (payload === null || payload === undefined) return '0'
      if (Buffer.isBuffer(payload)) return String(payload.length)
    }
    return undefined
  }
  const coding = compressionFor(c, request.raw, { status: reply.statusCode, header })
  if (coding === undefined) return payload
  if (c.vary) {
    const vary = reply.getHeader('vary')
    reply.header('vary', vary === undefined ? 'Accept-Encoding' : [...(Array.isArray(vary) ? vary : [String(vary)]), 'Accept-Encoding'])
  }
  if (coding === 'identity') return payload
  reply.header('content-encoding', coding)
  const etag = reply.getHeader('etag')
  reply.removeHeader('content-length')
  reply.removeHeader('accept-ranges')
  if (etag !== undefined) {
    const weak = weakEtag(String(etag))
    if (weak === undefined) reply.removeHeader('etag')
    else reply.header('etag', weak)
  }
  if (request.raw.method === 'HEAD') return payload
  const z = encoder(coding, c.level)
  if (payload instanceof Readable) pipeline(payload, z, () => {})
  else z.end(payload)
  return z
}
