import type { IncomingMessage } from 'node:http'
import type { HandlerCompileEnv, RequestContext, Template } from '@proxyctl/core'
import { asHeaderValue } from '@proxyctl/core/internal'

/**
 * Header rules of the proxy, compiled at config load.
 *
 * Request (client → upstream), as nginx by default: hop-by-hop headers are dropped (`Connection`
 * and every header it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
 * `Transfer-Encoding`, `Upgrade`), and `Expect` (we answer `100-continue` ourselves, as nginx);
 * `Host` becomes the target's host (`$proxy_host`); `setHeaders` replace same-named headers, an
 * empty rendering removes them (but Host, sent empty). Unlike nginx (HTTP/1.0, `Connection:
 * close`), the upstream connection is HTTP/1.1 keep-alive (`Connection: keep-alive`, as undici
 * writes it).
 *
 * Response (upstream → client): hop-by-hop headers dropped, and what nginx hides by default
 * (`Date` — we send our own —, `Server`, `X-Pad`, `X-Accel-*`), plus `hideHeaders`, minus
 * `passHeaders`.
 */

/** Request headers the proxy writes itself for its hop; setHeaders naming one is a config error saying what to use. */
const PROXY_OWNED: Record<string, string> = {
  connection: 'the proxy sets "Connection" itself (keep-alive to the upstream); to pass WebSocket upgrades, use websocket(target) for this location',
  upgrade: 'the proxy sets "Upgrade" itself; to pass WebSocket upgrades, use websocket(target) for this location',
  'keep-alive': 'the proxy manages the upstream connection itself ("Keep-Alive" is hop-by-hop)',
  te: 'the proxy decides "TE" for its hop itself',
  'transfer-encoding': 'the proxy frames the request body itself ("Transfer-Encoding" follows the body it sends)',
  'content-length': 'the proxy frames the request body itself ("Content-Length" follows the body it sends)'
}

const REQUEST_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'host', 'http2-settings'])
const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'])
const RESPONSE_HIDDEN = ['date', 'server', 'x-pad', 'x-accel-expires', 'x-accel-redirect', 'x-accel-limit-rate', 'x-accel-buffering', 'x-accel-charset']

export interface ForwardedOptions {
  /** `X-Forwarded-For: $proxy_add_x_forwarded_for`. */
  for?: boolean
  /** `X-Forwarded-Proto: $scheme`. */
  proto?: boolean
  /** `X-Forwarded-Host: $http_host`. */
  host?: boolean
}

export interface HeaderOptions {
  /**
   * nginx's proxy_set_header: request headers to set (templates); `''` removes one. Without it,
   * the `proxySetHeaders` of the location, its enclosing ones, the server or the top level (the
   * nearest that sets any) apply; with it, none of those (nginx's rule: no merge).
   */
  setHeaders?: Record<string, string>
  /**
   * nginx's proxy_pass_request_headers: `false` sends none of the client's headers upstream, only
   * Host, the body's Content-Length and what setHeaders, xForwarded and forwarded set. Default true.
   */
  passRequestHeaders?: boolean
  /** `true` adds all three X-Forwarded-* headers. Off by default, as nginx. */
  xForwarded?: boolean | ForwardedOptions
  /** RFC 7239 `Forwarded: for=...;host=...;proto=...`, appended to the client's. Off by default. */
  forwarded?: boolean
  hideHeaders?: string[]
  passHeaders?: string[]
}

/** Names (lower case) of headers named by a `Connection` header value. */
export function connectionTokens (value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined
  const out = new Set<string>()
  for (const v of Array.isArray(value) ? value : [value]) {
    for (const t of v.split(',')) { const s = t.trim().toLowerCase(); if (s !== '') out.add(s) }
  }
  return out
}

function forwardedNode (addr: string): string {
  if (addr.includes(':')) return `"[${addr}]"`
  return addr
}

/** `Forwarded` as RFC 7239: the client's value (if any), then this hop. */
export function forwardedValue (ctx: RequestContext): string {
  const addr = ctx.socket.remoteAddress
  const host = ctx.req.headers.host
  // A unix socket peer has no address: RFC 7239 (6.3) says "unknown".
  let hop = `for=${addr === undefined ? 'unknown' : forwardedNode(addr)}`
  if (host !== undefined) hop += `;host=${/^[\w.:-]+$/.test(host) ? host : JSON.stringify(host)}`
  hop += `;proto=${ctx.listen.scheme}`
  const prior = ctx.req.headers.forwarded
  return prior === undefined ? hop : `${prior}, ${hop}`
}

export interface CompiledRequestHeaders {
  /**
   * Builds the upstream request headers as a flat list (name, value, ...). `hostOverride`: the
   * Host to send when setHeaders does not set one.
   */
  build (ctx: RequestContext, req: IncomingMessage, proxyHost: string, withoutBody?: boolean): string[]
}

export function compileRequestHeaders (options: HeaderOptions, env: HandlerCompileEnv): CompiledRequestHeaders {
  const set: Array<[name: string, value: Template | ((ctx: RequestContext) => string)]> = []
  const xf = options.xForwarded === true ? { for: true, proto: true, host: true } : (options.xForwarded || {})
  if (xf.for) set.push(['X-Forwarded-For', env.template('$proxy_add_x_forwarded_for')])
  if (xf.proto) set.push(['X-Forwarded-Proto', env.template('$scheme')])
  if (xf.host) set.push(['X-Forwarded-Host', env.template('$http_host')])
  if (options.forwarded === true) set.push(['Forwarded', forwardedValue])
  // The handler's own, else the nearest level's proxySetHeaders (errors then name where they come from).
  const inherited = env.location !== undefined ? env.location.proxySetHeaders : env.server.proxySetHeaders
  const setHeaders = options.setHeaders ?? inherited ?? {}
  const where = options.setHeaders !== undefined ? '.setHeaders' : ' (proxySetHeaders in force here)'
  for (const [name, value] of Object.entries(setHeaders)) {
    const lower = name.toLowerCase()
    const owned = PROXY_OWNED[lower]
    const at = `${where}[${JSON.stringify(name)}]`
    if (owned !== undefined) throw env.error(owned, at)
    const i = set.findIndex(([n]) => n.toLowerCase() === lower)
    const entry: [string, Template] = [name, env.template(value, at)]
    if (i === -1) set.push(entry); else set[i] = entry
  }
  const overridden = new Set(set.map(([n]) => n.toLowerCase()))
  const setsHost = overridden.has('host')
  // HTTP/1.1 requires a Host line: one that renders empty (`$http_host` of an HTTP/1.0 request
  // without Host) is sent empty (RFC 9112 3.2), so the upstream sees no host, as behind nginx
  // (which sends none on its HTTP/1.0 leg), rather than a host made up by the client.
  const render = set.map(([name, v]) => [name, typeof v === 'function' ? v : v.render.bind(v), name.toLowerCase() === 'host'] as const)
  const pushSet = (ctx: RequestContext, out: string[]): string[] => {
    for (const [name, fn, required] of render) {
      const v = fn(ctx)
      if (v !== '' || required) out.push(name, asHeaderValue(v))
    }
    return out
  }

  if (options.passRequestHeaders === false) {
    return {
      build (ctx, req, proxyHost, withoutBody = false) {
        const out: string[] = []
        if (!setsHost) out.push('Host', proxyHost)
        // The body's framing is the proxy's own (nginx's $proxy_internal_body_length); a chunked one gets its length where it is buffered.
        const length = req.headers['content-length']
        if (!withoutBody && length !== undefined) out.push('Content-Length', length)
        return pushSet(ctx, out)
      }
    }
  }

  return {
    build (ctx, req, proxyHost, withoutBody = false) {
      const raw = req.rawHeaders
      const named = req.headers.connection === undefined ? undefined : connectionTokens(req.headers.connection)
      const out: string[] = []
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i] as string
        const lower = name.toLowerCase()
        if (REQUEST_DROP.has(lower) || overridden.has(lower) || named?.has(lower) === true) continue
        if (withoutBody && (lower === 'content-length' || lower === 'content-type')) continue
        out.push(name, raw[i + 1] as string)
      }
      if (!setsHost) out.push('Host', proxyHost)
      return pushSet(ctx, out)
    }
  }
}

export interface CompiledResponseHeaders {
  /** True when a response header (lower case) is sent to the client. */
  keep (lower: string, connectionNamed: Set<string> | undefined): boolean
}

export function compileResponseHeaders (options: HeaderOptions): CompiledResponseHeaders {
  const hidden = new Set(RESPONSE_HIDDEN)
  for (const h of options.hideHeaders ?? []) hidden.add(h.toLowerCase())
  for (const h of options.passHeaders ?? []) hidden.delete(h.toLowerCase())
  // One lookup per header: hop-by-hop ones are never passed, whatever passHeaders says.
  const dropped = new Set([...hidden, ...RESPONSE_HOP_BY_HOP])
  return {
    keep (lower, named) {
      return !dropped.has(lower) && (named === undefined || !named.has(lower))
    }
  }
}
