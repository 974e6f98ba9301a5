import type { ServerResponse } from 'node:http'
import { RequestBodyError } from '../errors.js'
import { kRequestContext, refuseRequest, type RoutedRequest } from '../routing/router.js'

/**
 * nginx's client_max_body_size at the front door: checked once server and location are known,
 * before any handler (static files and `respond()` too, as nginx checks it for every location)
 * and before the fast path. A declared Content-Length over the limit is refused here; a chunked
 * body is counted by whoever reads it (the proxy's request-body reader).
 *
 * `Expect: 100-continue` (Node's 'checkContinue'): a refused request gets its 413 without a 100;
 * any other gets its 100 now, as nginx sends it when it starts reading (or discarding) the body,
 * which it does for every request it does not refuse.
 *
 * Returns the internal route that answers the refusal (through error_page, see app.ts), or
 * undefined when the request may go on.
 */
export function checkRequestBody (req: RoutedRequest, res: ServerResponse, expectsContinue: boolean): string | undefined {
  const ctx = req[kRequestContext]
  // Not routed (a 400 on its way): no 100 either.
  if (ctx === undefined) return undefined
  const limit = (ctx.location ?? ctx.server).limits.clientMaxBodySize
  const length = Number(req.headers['content-length'])
  if (limit > 0 && length > limit) {
    return refuseRequest(req, new RequestBodyError('PROXYCTL_BODY_TOO_LARGE',
      `client intended to send too large body: ${length} bytes`, 413, 'clientMaxBodySize', limit))
  }
  if (expectsContinue) res.writeContinue()
  return undefined
}
