import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { ExchangeRecord } from '../log/exchange-record.js'
import type { CarriedHeaders } from '../http/carried-headers.js'
import type { ResolvedListen, ResolvedLocation, ResolvedServer } from '../config/model.js'

/**
 * What the phases of one request share: where it came in, which server and location were
 * selected, the normalised URI, captures. One object per request, created by the router and
 * reachable as `request.proxyctl` in Fastify handlers and hooks.
 */
export class RequestContext {
  readonly req: IncomingMessage
  /** The client connection. Kept here: Node detaches `req.socket` once a response is done. */
  readonly socket: Socket
  readonly listen: ResolvedListen
  server: ResolvedServer
  /** Undefined only when no location matched (the server's fallback answers). */
  location: ResolvedLocation | undefined
  /** The request target as the client sent it (`$request_uri`). */
  readonly requestUri: string
  /** Normalised, decoded path (`$uri`); changes on internal redirects. */
  uri: string
  /** Raw query string without `?` (`$args`). */
  args: string
  /** Host from the request line or Host header, normalised (lower case, no port); '' if none. */
  readonly host: string
  /** Match of the selected regex location, else of the server's regex name: `$1`..`$9` and named groups. */
  captures: RegExpExecArray | null
  /** Match of the server's regex name, if a regex selected the server (its named groups stay variables, as nginx). */
  serverCaptures: RegExpExecArray | null
  /** Internal redirects taken so far (try_files, error pages); nginx stops at 10. */
  internalRedirects = 0
  /**
   * An internal redirect to a URI changed `uri`/`args` (nginx's `!valid_unparsed_uri`): a proxy
   * without a URI part then sends the normalised URI instead of the client's raw one.
   */
  uriChanged = false
  /**
   * `rewrite ... break` changed the URI inside the selected location (nginx's
   * `!r->valid_location`): a proxy with a URI part then sends the whole new URI instead.
   */
  rewrittenInLocation = false
  /** What a rewrite answers instead of a location: its redirect, or 500 for a cycle (REWRITE_ROUTE). */
  rewriteAnswer: { status: number, location?: string } | undefined = undefined
  /** An error_page redirect happened; nginx (recursive_error_pages off) takes no second one. */
  errorPageUsed = false
  /** The status the final response is sent with, when an error_page rule fixed it. */
  statusOverride: number | undefined = undefined
  /** Headers an upstream's X-Accel-Redirect carried onto the final answer (http/carried-headers.ts). */
  carried: CarriedHeaders | undefined = undefined
  /** Parsed cookies, computed on first use of `$cookie_*`. */
  cookies: Map<string, string> | undefined
  /** Parsed query, computed on first use of `$arg_*`. */
  argMap: Map<string, string> | undefined
  /** What the request was and how it was answered (status, bytes, times, upstream tries): the access log's and metrics' one source. */
  record: ExchangeRecord | undefined = undefined
  /** What limitReq decided (nginx's $limit_req_status: PASSED, DELAYED, REJECTED, DELAYED_DRY_RUN, REJECTED_DRY_RUN); set once per request, as nginx. */
  limitReqStatus: string | undefined = undefined
  /** What limitConn decided (nginx's $limit_conn_status: PASSED, REJECTED, REJECTED_DRY_RUN). */
  limitConnStatus: string | undefined = undefined
  /** The status a limit refused the request with, for the location's route to answer (the fast path hands it over). */
  limitRefusal: number | undefined = undefined
  /** Free slots for plugins, keyed by their own symbols or names. */
  readonly locals: Record<string | symbol, unknown> = Object.create(null)
  /** Hands a raw request to the app's router again (internal redirects). */
  readonly dispatch: (req: IncomingMessage, res: ServerResponse) => void

  constructor (req: IncomingMessage, listen: ResolvedListen, server: ResolvedServer, requestUri: string,
    uri: string, args: string, host: string, dispatch: (req: IncomingMessage, res: ServerResponse) => void) {
    this.req = req
    this.socket = req.socket
    this.listen = listen
    this.server = server
    this.location = undefined
    this.requestUri = requestUri
    this.uri = uri
    this.args = args
    this.host = host
    this.captures = null
    this.serverCaptures = null
    this.cookies = undefined
    this.argMap = undefined
    this.dispatch = dispatch
  }
}
