import { hostname as osHostname } from 'node:os'
import { isIPv4 } from 'node:net'
import { TLSSocket } from 'node:tls'
import type { RequestContext } from '../routing/request-context.js'
import { UPSTREAM_VARIABLES, upstreamValue } from '../log/exchange-record.js'

/** Reads one variable's value for a request. Must not throw; '' when the value is absent. */
export type VariableGetter = (ctx: RequestContext) => string

const hostname = osHostname()
const pid = String(process.pid)

function header (ctx: RequestContext, name: string): string {
  const v = ctx.req.headers[name]
  if (v === undefined) return ''
  return Array.isArray(v) ? v.join(', ') : v
}

/** The client's TLS connection, undefined on plain HTTP. */
function tlsOf (ctx: RequestContext): TLSSocket | undefined {
  return ctx.socket instanceof TLSSocket ? ctx.socket : undefined
}

function remoteAddr (ctx: RequestContext): string {
  const a = ctx.socket.remoteAddress
  // A unix socket peer has no address; nginx prints "unix:".
  return a === undefined ? 'unix:' : a
}

/** nginx's $binary_remote_addr: the address's 4 (IPv4) or 16 (IPv6) bytes, as a latin1 string; "unix:" for a unix socket. */
function binaryRemoteAddr (ctx: RequestContext): string {
  const a = ctx.socket.remoteAddress
  if (a === undefined) return 'unix:'
  // A connection's requests, and a busy client's connections, ask for the same address in a row.
  if (a === lastAddr) return lastBinary
  lastBinary = binaryAddr(a)
  lastAddr = a
  return lastBinary
}
let lastAddr = ''
let lastBinary = ''

function binaryAddr (a: string): string {
  if (isIPv4(a)) {
    const p = a.split('.')
    return String.fromCharCode(Number(p[0]), Number(p[1]), Number(p[2]), Number(p[3]))
  }
  // IPv6: expand "::" and a trailing dotted quad into 8 groups of 16 bits.
  let head = a
  let tail4 = ''
  const dot = a.lastIndexOf(':')
  if (a.includes('.', dot)) { tail4 = a.slice(dot + 1); head = a.slice(0, dot + 1) + '0:0' }
  const [l, r] = head.split('::') as [string, string | undefined]
  const left = l === '' ? [] : l.split(':')
  const right = r === undefined || r === '' ? [] : r.split(':')
  const groups = r === undefined ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right]
  let out = ''
  for (const g of groups) { const v = parseInt(g, 16); out += String.fromCharCode(v >> 8, v & 0xff) }
  if (tail4 !== '') out = out.slice(0, 12) + tail4.split('.').map((n) => String.fromCharCode(Number(n))).join('')
  return out
}

/** Variables with a fixed name, as nginx documents them. */
export const builtinVariables: ReadonlyMap<string, VariableGetter> = new Map<string, VariableGetter>([
  ['uri', (c) => c.uri],
  ['document_uri', (c) => c.uri],
  ['request_uri', (c) => c.requestUri],
  ['args', (c) => c.args],
  ['query_string', (c) => c.args],
  ['is_args', (c) => (c.args === '' ? '' : '?')],
  ['host', (c) => c.host !== '' ? c.host : c.server.primaryName],
  ['hostname', () => hostname],
  ['pid', () => pid],
  ['remote_addr', remoteAddr],
  ['binary_remote_addr', binaryRemoteAddr],
  // What limitReq / limitConn decided for the request (nginx 1.17.6's variables); '' when none applied.
  ['limit_req_status', (c) => c.limitReqStatus ?? ''],
  ['limit_conn_status', (c) => c.limitConnStatus ?? ''],
  ['remote_port', (c) => { const p = c.socket.remotePort; return p === undefined ? '' : String(p) }],
  ['scheme', (c) => c.listen.scheme],
  ['https', (c) => (c.listen.scheme === 'https' ? 'on' : '')],
  ['server_name', (c) => c.server.primaryName],
  ['server_port', (c) => { const p = c.socket.localPort; return p === undefined ? '' : String(p) }],
  ['server_addr', (c) => c.socket.localAddress ?? 'unix:'],
  ['request_method', (c) => c.req.method ?? ''],
  ['server_protocol', (c) => `HTTP/${c.req.httpVersion}`],
  ['content_length', (c) => header(c, 'content-length')],
  ['content_type', (c) => header(c, 'content-type')],
  // The proxy's tries, from the request's record (log/exchange-record.ts).
  ...UPSTREAM_VARIABLES.map((name): [string, VariableGetter] => [name, (c) => upstreamValue(c.record, name) ?? '']),
  // The proxy cache's verdict on this request (plugins/src/cache), '' where no cache was asked.
  ['upstream_cache_status', (c) => c.record?.cacheStatus ?? ''],
  // A header sent empty still gets its comma, as nginx (", 10.0.0.1").
  // nginx's ngx_http_ssl_module variables: '' on plain HTTP.
  ['ssl_protocol', (c) => tlsOf(c)?.getProtocol() ?? ''],
  ['ssl_cipher', (c) => tlsOf(c)?.getCipher()?.name ?? ''],
  // The name as the client sent it in SNI (not lower-cased), '' without one.
  ['ssl_server_name', (c) => { const n = tlsOf(c)?.servername; return typeof n === 'string' ? n : '' }],
  ['proxy_add_x_forwarded_for', (c) => {
    const xff = c.req.headers['x-forwarded-for']
    return xff === undefined ? remoteAddr(c) : `${Array.isArray(xff) ? xff.join(', ') : xff}, ${remoteAddr(c)}`
  }]
])


function parseQuery (args: string): Map<string, string> {
  const map = new Map<string, string>()
  if (args === '') return map
  for (const pair of args.split('&')) {
    const eq = pair.indexOf('=')
    const k = eq === -1 ? pair : pair.slice(0, eq)
    // nginx's $arg_NAME is the first occurrence, raw (not decoded), name compared case-insensitively.
    const key = k.toLowerCase()
    if (!map.has(key)) map.set(key, eq === -1 ? '' : pair.slice(eq + 1))
  }
  return map
}

function parseCookies (raw: string): Map<string, string> {
  const map = new Map<string, string>()
  for (const part of raw.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    const k = part.slice(0, eq).trim()
    if (!map.has(k)) map.set(k, part.slice(eq + 1).trim())
  }
  return map
}

/**
 * Families of variables whose name carries a parameter (`$http_x_real_ip`). Each maker runs once,
 * at config load, and returns the getter for that one name.
 */
export const prefixVariables: ReadonlyArray<[prefix: string, make: (rest: string) => VariableGetter]> = [
  ['http_', (rest) => {
    const name = rest.replace(/_/g, '-').toLowerCase()
    // nginx reads "_" and "-" alike: with underscoresInHeaders, X_Remote_User is $http_x_remote_user too.
    return (c) => c.req.headers[name] !== undefined ? header(c, name) : underscored(c, name)
  }],
  ['arg_', (rest) => {
    const name = rest.toLowerCase()
    return (c) => {
      c.argMap ??= parseQuery(c.args)
      return c.argMap.get(name) ?? ''
    }
  }],
  ['cookie_', (rest) => (c) => {
    c.cookies ??= parseCookies(header(c, 'cookie'))
    return c.cookies.get(rest) ?? ''
  }]
]

/** A header whose name spells some `-` as `_` (only present with underscoresInHeaders). */
function underscored (c: RequestContext, name: string): string {
  for (const key in c.req.headers) {
    if (key.length === name.length && key.includes('_') && key.replace(/_/g, '-') === name) return header(c, key)
  }
  return ''
}

/** `$1`..`$9`: groups of the selected regex location's match. */
export function captureVariable (n: number): VariableGetter {
  return (c) => c.captures?.[n] ?? ''
}

/** `$name` for a named group `(?<name>...)` of the selected regex location, or of the server's regex name. */
export function namedCaptureVariable (name: string): VariableGetter {
  return (c) => c.captures?.groups?.[name] ?? c.serverCaptures?.groups?.[name] ?? ''
}
