import fs from 'node:fs'
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { compressionFor, contentTypeOf, etagListHas, modifiedSince, multipartLayout, parseHttpTime, rangesOf, sendStatus, withCharset, type RangePart, type ResolvedContent } from '@proxyctl/core/internal'

/**
 * nginx's answer for one regular file: its static module (Content-Type by extension, strong
 * ETag "<mtime hex>-<size hex>", Last-Modified), its not_modified filter (If-Unmodified-Since,
 * If-Match, If-Modified-Since and If-None-Match, both of the last two having to agree), its range
 * filter (If-Range compared strongly, suffix and multiple ranges, multipart/byteranges, max_ranges)
 * and gzip_static / brotli_static. Written here because @fastify/send's rules are Express's, not
 * nginx's. The file is streamed from one open descriptor with backpressure, never read whole.
 */

export interface SendOptions {
  /** Serve `file.br` / `file.gz` beside the file (nginx's brotli_static, gzip_static with gzip_vary). */
  readonly precompressed: boolean
  /** Cache-Control max-age in ms, as nginx's `expires`; undefined: none. */
  readonly maxAge: number | undefined
}

/** An open file: a plain descriptor (callback fs streams are cheaper than FileHandle ones). */
interface Opened { fd: number, size: number, mtime: number }
interface Chosen extends Opened { encoding: 'br' | 'gzip' | undefined, vary: boolean }

export async function sendFile (request: FastifyRequest, reply: FastifyReply, file: string, uri: string, opts: SendOptions): Promise<void> {
  const ctx = request.proxyctl
  const chosen = await open(request, file, opts.precompressed)
  if (chosen === undefined) { sendStatus(request, reply, 404); return }
  const { fd, size, mtime } = chosen
  let handed = false
  try {
    const content: ResolvedContent = ctx.location?.content ?? ctx.server.content
    const etag = `"${mtime.toString(16)}-${size.toString(16)}"`
    const lastModified = new Date(mtime * 1000).toUTCString()
    const type = withCharset(contentTypeOf(uri, content), content)
    const h = request.headers
    // gzip_static's Vary follows gzip_vary: on unless `compress` here says otherwise.
    if (chosen.vary && (ctx.location?.compress?.vary ?? true)) reply.header('vary', 'Accept-Encoding')
    // nginx applies its not_modified and range filters to 200 answers only (not to an error page
    // served with its error status).
    const plain = (ctx.statusOverride ?? 200) === 200
    if (plain) {
      if ((h['if-unmodified-since'] !== undefined && !(parseHttpTime(h['if-unmodified-since']) >= mtime)) ||
        (h['if-match'] !== undefined && !etagListHas(h['if-match'], etag, false))) {
        sendStatus(request, reply, 412)
        return
      }
    }
    if (opts.maxAge !== undefined) {
      // nginx's `expires`: both headers, on 200, 206 and 304 (not on 412 or 416).
      reply.header('expires', new Date(Date.now() + opts.maxAge).toUTCString())
      reply.header('cache-control', `max-age=${Math.floor(opts.maxAge / 1000)}`)
    }
    if (plain) {
      const ims = h['if-modified-since']
      const inm = h['if-none-match']
      if ((ims !== undefined || inm !== undefined) &&
        (ims === undefined || !modifiedSince(ims, mtime, content.ifModifiedSince)) &&
        (inm === undefined || etagListHas(inm, etag, true))) {
        void reply.code(304).header('etag', etag).header('last-modified', lastModified).send()
        return
      }
    }
    // gzip_static and brotli_static answers take no ranges (nginx leaves allow_ranges off for them),
    // nor one `compress` encodes (nginx's range filter comes after gzip, which drops the length).
    const ranges = chosen.encoding === undefined && content.maxRanges > 0 && !compressed(request, type, size)
    const range = plain && ranges ? rangesOf(h.range, h['if-range'] as string | undefined, etag, mtime, size, content.maxRanges) : undefined
    const head = request.raw.method === 'HEAD'
    if (range === 'unsatisfiable') {
      reply.header('content-range', `bytes */${size}`)
      sendStatus(request, reply, 416)
      return
    }
    // nginx's 416 page carries neither (nor the encoding); every other answer below has the ETag,
    // but a file served with an error status loses Last-Modified (nginx's header filter keeps it
    // on 200, 206 and 304 only) and Accept-Ranges (its range filter, on 200 only).
    if (plain) reply.header('last-modified', lastModified)
    reply.header('etag', etag)
    if (chosen.encoding !== undefined) reply.header('content-encoding', chosen.encoding)
    if (range === undefined) {
      if (ranges && plain) reply.header('accept-ranges', 'bytes')
      reply.code(200).header('content-type', type).header('content-length', size)
      if (head || size === 0) { void reply.send(); return }
      handed = true
      void reply.send(fs.createReadStream('', { fd, start: 0, end: size - 1, autoClose: true, highWaterMark: chunkFor(size) }))
      return
    }
    if (range.length === 1) {
      const [start, end] = range[0] as [number, number]
      reply.code(206).header('content-type', type).header('content-range', `bytes ${start}-${end - 1}/${size}`).header('content-length', end - start)
      if (head) { void reply.send(); return }
      handed = true
      void reply.send(fs.createReadStream('', { fd, start, end: end - 1, autoClose: true, highWaterMark: chunkFor(end - start) }))
      return
    }
    const multi = multipartLayout(range, type, size)
    reply.code(206).header('content-type', multi.contentType).header('content-length', multi.length)
    if (head) { void reply.send(); return }
    handed = true
    void reply.send(Readable.from(multipart(fd, multi.parts, multi.tail)))
  } finally {
    if (!handed) fs.close(fd, noop)
  }
}

function noop (): void {}

/** A read buffer no larger than what is left to send: a small file does not cost a 64 KiB one. */
function chunkFor (bytes: number): number {
  return bytes < 65536 ? Math.max(bytes, 1) : 65536
}

async function * multipart (fd: number, parts: readonly RangePart[], tail: string): AsyncGenerator<Buffer> {
  try {
    for (const p of parts) {
      yield Buffer.from(p.head, 'latin1')
      for await (const chunk of fs.createReadStream('', { fd, start: p.start, end: p.end - 1, autoClose: false })) yield chunk as Buffer
    }
    yield Buffer.from(tail, 'latin1')
  } finally {
    fs.close(fd, noop)
  }
}

/**
 * The file to send: with `precompressed`, `file.br` or `file.gz` when the client accepts it (br
 * first). Vary is sent when such a sibling exists, whether or not it is chosen (nginx's gzip_vary).
 */
async function open (request: FastifyRequest, file: string, precompressed: boolean): Promise<Chosen | undefined> {
  let vary = false
  if (precompressed) {
    const accepted = acceptedEncodings(request.headers['accept-encoding'])
    // nginx's gzip_http_version 1.1: an HTTP/1.0 client gets no gzip.
    const gzipOk = accepted.has('gzip') && request.raw.httpVersion !== '1.0'
    for (const [encoding, ok] of [['br', accepted.has('br')], ['gzip', gzipOk]] as const) {
      const sibling = await openFile(`${file}.${encoding === 'br' ? 'br' : 'gz'}`)
      if (sibling === undefined) continue
      vary = true
      if (ok) return { ...sibling, encoding, vary }
      fs.close(sibling.fd, noop)
    }
  }
  const opened = await openFile(file)
  return opened === undefined ? undefined : { ...opened, encoding: undefined, vary }
}

function openFile (file: string): Promise<Opened | undefined> {
  return new Promise((resolve) => {
    fs.open(file, 'r', (err, fd) => {
      if (err !== null) { resolve(undefined); return }
      fs.fstat(fd, (err, st) => {
        if (err !== null || !st.isFile()) { fs.close(fd, noop); resolve(undefined); return }
        resolve({ fd, size: st.size, mtime: Math.floor(st.mtimeMs / 1000) })
      })
    })
  })
}

/** Codings named in Accept-Encoding with a q above 0. */
function acceptedEncodings (header: string | undefined): Set<string> {
  const out = new Set<string>()
  if (header === undefined) return out
  for (const item of header.split(',')) {
    const [name, ...params] = item.split(';')
    const q = params.map((p) => /^\s*q\s*=\s*([\d.]+)\s*$/i.exec(p)).find((m) => m !== null)
    if (q !== undefined && q !== null && Number(q[1]) === 0) continue
    const n = (name ?? '').trim().toLowerCase()
    if (n !== '') out.add(n)
  }
  return out
}


/** Whether `compress` in force encodes this file's 200 for this request. */
function compressed (request: FastifyRequest, type: string, size: number): boolean {
  const ctx = request.proxyctl
  const c = (ctx.location ?? ctx.server).compress
  if (c === undefined) return false
  const coding = compressionFor(c, request.raw, { status: 200, header: (n) => n === 'content-type' ? type : n === 'content-length' ? String(size) : undefined })
  return coding !== undefined && coding !== 'identity'
}
