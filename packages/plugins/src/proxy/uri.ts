/**
 * The URI of the request sent upstream, as ngx_http_proxy_create_request computes it.
 *
 * Static target (no variables):
 *  - no URI part (`http://app`): the client's request target as sent (`$request_uri`: raw, not
 *    normalised, query included) while nginx's `r->valid_unparsed_uri` holds; once an internal
 *    redirect to a URI, a rewrite or a change of `$args` happened, the normalised `$uri` (escaped,
 *    see below) plus `?$args`.
 *  - URI part (`http://app/x/`): the URI part, then `$uri` without its first
 *    `min(location path length, $uri length)` characters, escaped, then `?$args`. Only prefix and
 *    exact locations may do this. After `rewrite ... break` changed the URI inside the location
 *    the URI part is dropped: the whole `$uri` (escaped) plus `?$args`.
 *  - "escaped": with NGX_ESCAPE_URI when the client's path held a "%" or the request went through
 *    an internal redirect (nginx's `r->quoted_uri || r->internal`); otherwise `$uri` is copied as
 *    is (it then holds only characters the client sent unescaped).
 *
 * Target with variables: when the rendering has a URI part, it is sent as rendered, nothing
 * added (no `?$args`, no escaping); without one, as a static target without URI part.
 */
import { Buffer } from 'node:buffer'
import { normalizeUri } from '@proxyctl/core/internal'

/** nginx's location modifiers, as core's routing names them. */
export type LocationKind = 'exact' | 'prefix' | 'prefix-noregex' | 'regex' | 'regex-i' | 'named'

export interface UriMappingOptions {
  /** The URI part of a static target (`ParsedProxyTarget.uriPart`); ignored with variables. */
  uriPart: string | undefined
  /** The location holding `proxy()`; undefined for a server's fallback (then taken as `/`). */
  location: { readonly kind: LocationKind, readonly path: string } | undefined
  /** The target has variables: pass the rendered target's URI part per request. */
  hasVariables: boolean
}

/** What the mapping reads per request. A RequestContext has the first three. */
export interface UriRequestState {
  /** Normalised, decoded path (`$uri`), as it is now. */
  readonly uri: string
  /** The request target as the client sent it (`$request_uri`; an absolute-form target is fine). */
  readonly requestUri: string
  /** The query without "?" (`$args`), as it is now. */
  readonly args: string
  /**
   * nginx's `!r->valid_unparsed_uri`: an internal redirect to a URI (try_files, error_page,
   * X-Accel-Redirect), a rewrite that changed the URI, or an assignment to `$args` happened. A jump
   * to a named location alone does NOT count. When undefined, taken as "`uri` or `args` differ from
   * what the client sent", which misses a redirect that lands on the same URI.
   */
  readonly uriChanged?: boolean
  /**
   * nginx's `r->internal`: any internal redirect, including to a named location. It makes the URI
   * escaped even when the client's path had no "%". Default: `uriChanged`.
   */
  readonly internal?: boolean
  /**
   * nginx's `!r->valid_location`: `rewrite ... break` (or `break` after a rewrite) changed the URI
   * inside this location; the URI part is then ignored. Default false.
   */
  readonly rewrittenInLocation?: boolean
}

/**
 * Per request: the URI (path and query) to put in the upstream request line. `renderedUriPart` is
 * the URI part of the rendered target (`parseRenderedTarget(...).uriPart`) for a target with
 * variables; ignored otherwise.
 */
export type UriMapping = (req: UriRequestState, renderedUriPart?: string) => string

export const URI_PART_NOT_ALLOWED = '"proxy_pass" cannot have URI part in location given by regular expression, ' +
  'or inside named location, or inside "if" statement, or inside "limit_except" block'

/**
 * The config error nginx gives for a URI part in a regex or named location, or undefined when the
 * combination is allowed. A target with variables is never refused (its URI part is per request).
 */
export function checkUriPartAllowed (opts: UriMappingOptions): string | undefined {
  if (opts.hasVariables || opts.uriPart === undefined || opts.location === undefined) return undefined
  const k = opts.location.kind
  if (k === 'regex' || k === 'regex-i' || k === 'named') return URI_PART_NOT_ALLOWED
  return undefined
}

/**
 * Compiles the URI mapping of one `proxy()` at config load. Throws an Error with nginx's message
 * when `checkUriPartAllowed` refuses the combination.
 */
export function compileUriMapping (opts: UriMappingOptions): UriMapping {
  const refused = checkUriPartAllowed(opts)
  if (refused !== undefined) throw new Error(refused)

  if (opts.hasVariables) {
    return (req, rendered) => {
      if (rendered !== undefined && rendered !== '') return rendered
      return wholeUri(req)
    }
  }

  const uriPart = opts.uriPart
  if (uriPart === undefined || uriPart === '') return wholeUri

  const loc = opts.location
  // regex and named locations cannot get here with a URI part; the fallback acts as "location /"
  const locLength = loc === undefined ? 1 : loc.path.length
  return (req) => {
    if (req.rewrittenInLocation === true) return escapedUri(req, 0, '')
    return escapedUri(req, locLength, uriPart)
  }
}

/** The URI when there is no URI part: raw while valid, else `$uri` escaped plus args. */
function wholeUri (req: UriRequestState): string {
  if (!uriChanged(req)) {
    const raw = unparsedUri(req.requestUri)
    if (raw !== undefined) return raw
  }
  return escapedUri(req, 0, '')
}

/** `prefix` + `$uri` from `skip` on (escaped as nginx does) + `?args`. */
function escapedUri (req: UriRequestState, skip: number, prefix: string): string {
  const uri = req.uri
  const cut = Math.min(skip, uri.length)
  let rest: string
  if (quotedPath(req.requestUri) || (req.internal ?? uriChanged(req))) {
    rest = escapeUri(uriBytes(req).subarray(Buffer.byteLength(uri.slice(0, cut))))
  } else {
    rest = uri.slice(cut)
  }
  const out = prefix + rest
  return req.args === '' ? out : `${out}?${req.args}`
}

function uriChanged (req: UriRequestState): boolean {
  if (req.uriChanged !== undefined) return req.uriChanged
  const { path, args } = splitTarget(req.requestUri)
  if (args !== req.args) return true
  if (path === '') return true
  try {
    return normalizeUri(path) !== req.uri
  } catch {
    return true
  }
}

/** The path and query of a raw request target; absolute-form loses its scheme and authority. */
function splitTarget (target: string): { path: string, args: string } {
  let start = 0
  if (target.charCodeAt(0) !== 0x2f) {
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target)
    if (m !== null) start = m[0].length
  }
  let end = target.indexOf('#', start)
  if (end === -1) end = target.length
  const q = target.indexOf('?', start)
  if (q !== -1 && q < end) return { path: target.slice(start, q), args: target.slice(q + 1, end) }
  return { path: target.slice(start, end), args: '' }
}

/** nginx's `r->unparsed_uri` when valid: the target from its path on, as sent. */
function unparsedUri (target: string): string | undefined {
  if (target.charCodeAt(0) === 0x2f) return target
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target)
  if (m === null) return undefined
  const rest = target.slice(m[0].length)
  // an absolute-form target without a path ("empty_path_in_uri") makes the unparsed URI invalid
  return rest.charCodeAt(0) === 0x2f ? rest : undefined
}

/** nginx's `r->quoted_uri`: the client's path (before "?" or "#") held a "%". */
function quotedPath (target: string): boolean {
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i)
    if (c === 0x25) return true
    if (c === 0x3f || c === 0x23) return false
  }
  return false
}

/**
 * The bytes of `$uri`. A JS string holds decoded text, so a path whose escapes were not valid
 * UTF-8 (`/a%FF`) reads as U+FFFD; while the URI is still the client's, its bytes are recovered
 * from the request target so they go upstream as sent (`%FF`), as nginx does.
 */
function uriBytes (req: UriRequestState): Buffer {
  const uri = req.uri
  if (!uri.includes('\uFFFD') || uriChanged(req)) return Buffer.from(uri, 'utf8')
  const path = splitTarget(req.requestUri).path
  // Carry every byte >= 0x80 through normalizeUri as the character U+0080..U+00FF (two UTF-8
  // bytes, both >= 0x80, so neither a "/" nor a "."), then read the result back as latin1.
  const widened = Buffer.from(path, 'utf8').toString('latin1').replace(/%([89A-Fa-f][0-9A-Fa-f])|[\x80-\xff]/g,
    (m, hex: string | undefined) => {
      const b = hex !== undefined ? parseInt(hex, 16) : m.charCodeAt(0)
      return Buffer.from(String.fromCharCode(b), 'utf8').toString('latin1').replace(/[\x80-\xff]/g,
        ch => '%' + ch.charCodeAt(0).toString(16).toUpperCase())
    })
  try {
    return Buffer.from(normalizeUri(widened), 'latin1')
  } catch {
    return Buffer.from(uri, 'utf8')
  }
}

// ngx_escape_uri(NGX_ESCAPE_URI): controls, space, '"', '#', '%', '<', '>', '?', '\', '^', '`',
// '{', '|', '}', DEL and every byte >= 0x80.
const ESCAPE = new Uint8Array(256)
for (let b = 0; b < 256; b++) ESCAPE[b] = b <= 0x20 || b >= 0x7f || '"#%<>?\\^`{|}'.includes(String.fromCharCode(b)) ? 1 : 0
const HEX = '0123456789ABCDEF'

/** nginx's ngx_escape_uri with NGX_ESCAPE_URI, upper-case hex. */
export function escapeUri (input: string | Uint8Array): string {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input
  let out = ''
  let start = 0
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]
    if (ESCAPE[b] === 0) continue
    if (i > start) out += Buffer.from(bytes.subarray(start, i)).toString('latin1')
    out += '%' + HEX[b >> 4] + HEX[b & 15]
    start = i + 1
  }
  if (start === 0) return Buffer.from(bytes).toString('latin1')
  if (start < bytes.length) out += Buffer.from(bytes.subarray(start)).toString('latin1')
  return out
}
