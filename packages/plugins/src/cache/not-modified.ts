import type { IncomingMessage } from 'node:http'
import type { RequestContext } from '@proxyctl/core'
import { etagListHas, modifiedSince, parseHttpTime } from '@proxyctl/core/internal'

/**
 * nginx's not_modified filter on an answer the cache could keep or kept (a proxied answer without
 * a cache passes the client's conditions to the upstream instead): a 200 whose ETag or
 * Last-Modified satisfies If-None-Match / If-Modified-Since becomes a 304 (no body, no
 * Content-Type or Content-Length); If-Match / If-Unmodified-Since failing becomes a 412.
 * `headers` is changed in place; the status to send is returned.
 */
export function notModified (ctx: RequestContext, req: IncomingMessage, status: number, headers: string[]): number {
  if (status !== 200) return status
  const h = req.headers
  const ims = h['if-modified-since']
  const inm = h['if-none-match']
  const ius = h['if-unmodified-since']
  const im = h['if-match']
  if (ims === undefined && inm === undefined && ius === undefined && im === undefined) return status
  let etag: string | undefined
  let lm = -1
  for (let i = 0; i < headers.length; i += 2) {
    const n = (headers[i] as string).toLowerCase()
    if (n === 'etag') etag = headers[i + 1]
    else if (n === 'last-modified') lm = parseHttpTime(headers[i + 1] as string)
  }
  if ((ius !== undefined && lm !== -1 && !(parseHttpTime(ius) >= lm)) ||
    (im !== undefined && (etag === undefined || !etagListHas(im, etag, false)))) return 412
  if (ims === undefined && inm === undefined) return status
  const mode = (ctx.location ?? ctx.server).content.ifModifiedSince
  if (ims !== undefined && (lm === -1 || modifiedSince(ims, lm, mode))) return status
  if (inm !== undefined && (etag === undefined || !etagListHas(inm, etag, true))) return status
  for (let i = 0; i < headers.length; i += 2) {
    const n = (headers[i] as string).toLowerCase()
    if (n === 'content-type' || n === 'content-length' || n === 'accept-ranges') { headers.splice(i, 2); i -= 2 }
  }
  return 304
}
