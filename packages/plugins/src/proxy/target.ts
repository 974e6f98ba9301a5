/**
 * The argument of `proxy('...')`, read as nginx reads `proxy_pass` (ngx_http_proxy_pass at config
 * load, ngx_http_proxy_eval per request when it holds variables, both on top of ngx_parse_url with
 * `uri_part` on).
 *
 *   http://app            an upstream named `app`, no URI part
 *   http://app/           URI part "/"
 *   https://10.0.0.1:8443/api/
 *   http://[::1]:9000
 *   http://unix:/run/app.sock            a unix socket, no URI part
 *   http://unix:/run/app.sock:/api/      the socket path ends at the first ":" after "unix:"
 *   http://$host$request_uri             variables: compiled by the caller, parsed per request
 *
 * nginx details kept: the scheme is matched case-insensitively; the URI part starts at the first
 * "/" or "?" after the host (for an IPv6 literal only at "/"); a port equal to the scheme's default
 * is left out of `$proxy_host`; a unix socket's `$proxy_host` is "localhost"; an upstream name is
 * matched case-insensitively and may not carry a port in a static target.
 */
import { ProxyctlError } from '@proxyctl/core'
import { parseAddress } from '@proxyctl/core/internal'

export type ProxyScheme = 'http' | 'https'

/** Where a parsed target connects. */
export type ProxyAddress =
  /** A configured upstream pool (`http://app` with `app` in `upstreamNames`). */
  | { readonly type: 'upstream', readonly name: string }
  /** A host (IP literal or name; IPv6 without brackets) and port (the scheme's default if none). */
  | { readonly type: 'tcp', readonly host: string, readonly port: number }
  | { readonly type: 'unix', readonly path: string }

export interface ParsedProxyTarget {
  readonly kind: 'static'
  /** The string as written (nginx's `plcf->url`; `proxy_redirect default` is built from it). */
  readonly raw: string
  readonly scheme: ProxyScheme
  readonly address: ProxyAddress
  /**
   * The address as a peer address string: `host:port`, `[v6]:port`, `unix:/path`; for an upstream
   * its name.
   */
  readonly peer: string
  /** nginx's `$proxy_host`, the default `Host` sent upstream: `host[:port]` or "localhost". */
  readonly proxyHost: string
  /** nginx's `$proxy_port`: the port as written, "80"/"443" when none or the default, '' for unix. */
  readonly proxyPort: string
  /** The URI part: undefined when absent (`http://app`); `/`, `/x/`, `?a=1`... otherwise. */
  readonly uriPart: string | undefined
}

/** A target holding variables; compile `raw` with the location's scope and parse each rendering. */
export interface TemplateProxyTarget {
  readonly kind: 'template'
  readonly raw: string
}

export type ProxyTarget = ParsedProxyTarget | TemplateProxyTarget

/** Thrown for a target nginx would refuse (at config load) or fail on (per request). */
export class ProxyTargetError extends ProxyctlError {
  constructor (message: string) {
    super('PROXYCTL_PROXY_TARGET_INVALID', message)
  }
}

const MAX_UNIX_PATH = 107 // sizeof(sun_path) - 1 on Linux
const HOSTNAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

/**
 * Reads a `proxy('...')` argument at config load. Any `$` makes it a template (as nginx counts
 * variables), returned unparsed. Throws ProxyTargetError for a URL nginx refuses: no
 * "http://"/"https://" prefix, no host, a bad port, a bad IPv6 literal, an empty or too long socket
 * path, a port after an upstream's name.
 */
export function parseProxyTarget (raw: string, upstreamNames: ReadonlySet<string>): ProxyTarget {
  if (raw.includes('$')) return { kind: 'template', raw }
  return parse(raw, upstreamNames, false)
}

/**
 * Reads the rendering of a template target, per request (ngx_http_proxy_eval): the same syntax,
 * except that a URI part starting with "?" gets a "/" before it, and a name with a port never
 * means an upstream (it is then a host to resolve). Throws ProxyTargetError where nginx logs an
 * error and answers 500.
 */
export function parseRenderedTarget (rendered: string, upstreamNames: ReadonlySet<string>): ParsedProxyTarget {
  return parse(rendered, upstreamNames, true)
}

function fail (raw: string, why: string): never {
  throw new ProxyTargetError(`invalid proxy target "${raw}": ${why}`)
}

function findUpstream (host: string, upstreamNames: ReadonlySet<string>): string | undefined {
  if (upstreamNames.has(host)) return host
  const lower = host.toLowerCase()
  for (const name of upstreamNames) if (name.toLowerCase() === lower) return name
  return undefined
}

function parse (raw: string, upstreamNames: ReadonlySet<string>, runtime: boolean): ParsedProxyTarget {
  let scheme: ProxyScheme
  let rest: string
  const lower = raw.slice(0, 8).toLowerCase()
  if (lower.startsWith('http://')) {
    scheme = 'http'
    rest = raw.slice(7)
  } else if (lower === 'https://') {
    scheme = 'https'
    rest = raw.slice(8)
  } else {
    fail(raw, 'the URL must start with "http://" or "https://"')
  }
  const defaultPort = scheme === 'http' ? 80 : 443

  // The address ends, and the URI part starts, after a unix socket's path at the first ":" (not
  // kept), after an IPv6 literal at the first "/", after any other host at the first "/" or "?".
  let authEnd: number
  let uriStart: number
  if (rest.slice(0, 5).toLowerCase() === 'unix:') {
    const colon = rest.indexOf(':', 5)
    authEnd = colon === -1 ? rest.length : colon
    uriStart = colon === -1 ? rest.length : colon + 1
  } else if (rest.startsWith('[')) {
    const close = rest.indexOf(']')
    const slash = close === -1 ? -1 : rest.indexOf('/', close + 1)
    authEnd = uriStart = slash === -1 ? rest.length : slash
  } else {
    const m = /[/?]/.exec(rest)
    authEnd = uriStart = m === null ? rest.length : m.index
  }
  const uri = rest.slice(uriStart)
  const a = parseAddress(rest.slice(0, authEnd), { defaultPort })
  if (a.kind === 'invalid') {
    switch (a.problem) {
      case 'no-path': fail(raw, 'no path in the unix domain socket')
      case 'unclosed':
      case 'after-bracket': fail(raw, 'invalid host')
      case 'bad-port':
      case 'port-range': fail(raw, `invalid port "${a.portText}"`)
      case 'no-host': fail(raw, 'no host')
    }
  }

  if (a.kind === 'unix') {
    const path = a.path
    if (Buffer.byteLength(path) > MAX_UNIX_PATH) fail(raw, 'too long path in the unix domain socket')
    return {
      kind: 'static',
      raw,
      scheme,
      address: { type: 'unix', path },
      peer: `unix:${path}`,
      proxyHost: 'localhost',
      proxyPort: '',
      uriPart: uriPart(uri, runtime)
    }
  }

  const host = a.host // for connecting
  const hostText = a.bracketed ? `[${host}]` : host // as written
  if (a.bracketed) {
    if (!isIPv6(host)) fail(raw, 'invalid IPv6 address')
  } else {
    if (!HOSTNAME.test(hostText)) fail(raw, `invalid host "${hostText}"`)
    const v4 = IPV4.exec(hostText)
    if (v4 !== null && v4.slice(1).some(o => Number(o) > 255)) fail(raw, `invalid host "${hostText}"`)
  }
  const { port, portText } = a
  if (port === 0) fail(raw, `invalid port "${portText as string}"`)
  const isDefault = portText === undefined || port === defaultPort
  const proxyHost = isDefault ? hostText : `${hostText}:${portText as string}`
  const proxyPort = isDefault ? String(defaultPort) : (portText as string)

  let address: ProxyAddress
  let peer: string
  const upstream = findUpstream(hostText, upstreamNames)
  if (upstream !== undefined && portText === undefined) {
    address = { type: 'upstream', name: upstream }
    peer = upstream
  } else {
    if (upstream !== undefined && !runtime) fail(raw, `upstream "${upstream}" may not have port ${port}`)
    address = { type: 'tcp', host, port }
    peer = `${hostText}:${port}`
  }

  return { kind: 'static', raw, scheme, address, peer, proxyHost, proxyPort, uriPart: uriPart(uri, runtime) }
}

function uriPart (uri: string, runtime: boolean): string | undefined {
  if (uri === '') return undefined
  // ngx_http_proxy_eval puts a "/" before a rendered URI part that starts with "?"
  if (runtime && uri[0] === '?') return '/' + uri
  return uri
}

function isIPv6 (s: string): boolean {
  // an embedded IPv4 tail counts as two groups
  let text = s
  const lastColon = s.lastIndexOf(':')
  if (lastColon !== -1 && s.slice(lastColon + 1).includes('.')) {
    const v4 = IPV4.exec(s.slice(lastColon + 1))
    if (v4 === null || v4.slice(1).some(o => Number(o) > 255)) return false
    text = s.slice(0, lastColon + 1) + '0:0'
  }
  if (!/^[0-9A-Fa-f:]+$/.test(text)) return false
  const double = text.indexOf('::')
  if (double !== -1 && text.indexOf('::', double + 1) !== -1) return false
  const groups = text.split(':')
  if (double === -1) return groups.length === 8 && groups.every(g => g.length >= 1 && g.length <= 4)
  const nonEmpty = groups.filter(g => g !== '')
  return nonEmpty.length <= 7 && nonEmpty.every(g => g.length <= 4) &&
    // a single ":" at either end is not allowed, only "::"
    !(text.startsWith(':') && !text.startsWith('::')) && !(text.endsWith(':') && !text.endsWith('::'))
}
