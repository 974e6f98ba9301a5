/**
 * nginx's access_log and log_format: formats compiled once at load into parts, rendered once per
 * request after its answer (from its ExchangeRecord), written through a buffered, non-blocking
 * sink per destination.
 */
import type { TLSSocket } from 'node:tls'
import { UPSTREAM_VARIABLES, upstreamValue, type ExchangeRecord } from './exchange-record.js'
import { compileTemplate } from '../variables/compile.js'
import type { CompileScope } from '../variables/types.js'
import type { LogSink } from './sink.js'

/** nginx's `combined`, its default format. */
export const COMBINED = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'

/** proxyctl's `json` format: one object per line (nginx's `escape=json`). */
export const JSON_FORMAT = '{"time":"$time_iso8601","remote_addr":"$remote_addr","request":"$request","status":$status,' +
  '"body_bytes_sent":$body_bytes_sent,"request_time":$request_time,"http_referer":"$http_referer","http_user_agent":"$http_user_agent",' +
  '"upstream_addr":"$upstream_addr","upstream_status":"$upstream_status","upstream_response_time":"$upstream_response_time"}'

/** How values are escaped: nginx's default (`"`, `\`, control bytes and >= 0x7f as \xHH), `json`, or `none`. */
export type LogEscape = 'default' | 'json' | 'none'

type LogGetter = (r: ExchangeRecord) => string | undefined

/** A part of a line: the variable's text as the line has it (escaped, `-` when missing). */
type LogPart = (r: ExchangeRecord) => string

/** A format compiled: literal parts and variable parts, alternating as the template has them. */
export interface LogFormat {
  readonly name: string
  readonly source: string
  readonly escape: LogEscape
  readonly parts: ReadonlyArray<string | LogPart>
}

/** Where one level's access lines go, and in which format; `sink` is bound when the app starts. */
export interface ResolvedAccessLog {
  /** An absolute file path, or 'stdout'. */
  readonly path: string
  /** The format; the default's follows the log's (start.ts). */
  format: LogFormat
  /** Not configured anywhere: proxyctl's default (on for `proxyctl start`, off for an embedder that passes its own logger). */
  readonly isDefault: boolean
  sink: LogSink | undefined
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const p2 = (n: number): string => (n < 10 ? '0' : '') + String(n)

/** The time zone offset as nginx prints it: `+0200` (local) and `+02:00` (iso8601). */
function offset (d: Date, colon: boolean): string {
  const m = -d.getTimezoneOffset()
  const a = Math.abs(m)
  return (m < 0 ? '-' : '+') + p2(Math.floor(a / 60)) + (colon ? ':' : '') + p2(a % 60)
}

// Both time strings change once a second: cached per second, as nginx caches its time strings.
let localSecond = -1
let localText = ''
let isoSecond = -1
let isoText = ''
function timeLocal (ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s !== localSecond) {
    const d = new Date(ms)
    localText = `${p2(d.getDate())}/${MONTHS[d.getMonth()] as string}/${d.getFullYear()}:${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${offset(d, false)}`
    localSecond = s
  }
  return localText
}
function timeIso (ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s !== isoSecond) {
    const d = new Date(ms)
    isoText = `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}${offset(d, true)}`
    isoSecond = s
  }
  return isoText
}

/** Seconds with millisecond resolution, as nginx prints times: 3 ms is "0.003". */
export function seconds (ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(3)
}

function header (r: ExchangeRecord, name: string): string | undefined {
  const v = r.req?.headers[name]
  return Array.isArray(v) ? v.join(', ') : v
}

/** The user of Basic authentication, as nginx's $remote_user. */
function remoteUser (r: ExchangeRecord): string | undefined {
  const auth = header(r, 'authorization')
  if (auth === undefined || !/^basic /i.test(auth)) return undefined
  const text = Buffer.from(auth.slice(6).trim(), 'base64').toString('latin1')
  const colon = text.indexOf(':')
  return colon === -1 ? undefined : text.slice(0, colon)
}

/** nginx's $request_length, from the head's lines (`Name: value` plus CRLF, as request-head.ts measures them) and the body's length. */
function requestLength (r: ExchangeRecord): string {
  const req = r.req
  if (req === undefined) return '0'
  let n = (req.method?.length ?? 0) + r.target.length + 13
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) n += (raw[i] as string).length + (raw[i + 1] as string).length + 4
  n += 2
  const cl = req.headers['content-length']
  if (cl !== undefined && req.complete) n += Number(cl) || 0
  return String(n)
}

/** The variables only the log has (the answer's, the connection's, the upstream tries'). */
const LOG_VARIABLES = new Map<string, LogGetter>([
  ['remote_addr', (r) => r.socket.remoteAddress ?? 'unix:'],
  ['remote_user', remoteUser],
  ['time_local', (r) => timeLocal(r.end)],
  ['time_iso8601', (r) => timeIso(r.end)],
  ['msec', (r) => (r.end / 1000).toFixed(3)],
  ['request', (r) => r.req === undefined ? (r.target === '' ? undefined : r.target) : `${r.req.method ?? ''} ${r.target} HTTP/${r.req.httpVersion}`],
  ['status', (r) => String(r.status).padStart(3, '0')],
  ['body_bytes_sent', (r) => String(r.bodyBytesSent)],
  ['bytes_sent', (r) => String(r.bytesSent)],
  ['request_time', (r) => seconds(r.end - r.start)],
  ['request_length', requestLength],
  ...UPSTREAM_VARIABLES.map((name): [string, LogGetter] => [name, (r) => upstreamValue(r, name)]),
  ['upstream_cache_status', (r) => r.cacheStatus],
  ['connection', (r) => String(r.connection)],
  ['connection_requests', (r) => String(r.connectionRequests)],
  ['pipe', () => '.'],
  // TLS is read from the socket when the listener speaks it (the record's field lets an HTTP/2 or QUIC leg say otherwise).
  ['ssl_protocol', (r) => r.sslProtocol ?? (r.socket as Partial<TLSSocket>).getProtocol?.() ?? undefined]
])

/** Variables whose text has nothing any escape changes (digits, times, addresses of tries): written as they are. */
const PLAIN = new Set(['remote_addr', 'time_local', 'time_iso8601', 'msec', 'status', 'body_bytes_sent', 'bytes_sent', 'request_time', 'request_length',
  'upstream_status', 'upstream_response_time', 'upstream_connect_time', 'upstream_header_time', 'connection', 'connection_requests', 'pipe'])

/** The variable's part of a line: escaped as the format says (unless PLAIN), `-` when missing (nothing, in JSON). */
function logPart (name: string, get: LogGetter, escape: LogEscape): LogPart {
  const missing = escape === 'json' ? '' : '-'
  const esc = escape === 'none' || PLAIN.has(name) ? undefined : escape === 'json' ? escapeJson : escapeDefault
  if (esc === undefined) return (r) => get(r) ?? missing
  return (r) => { const v = get(r); return v === undefined ? missing : esc(v) }
}

/** `$http_NAME` from the request itself, so a request refused before routing logs its headers too. */
function variableGetter (name: string, scope: CompileScope): LogGetter {
  const own = LOG_VARIABLES.get(name)
  if (own !== undefined) return own
  if (name.startsWith('http_')) {
    const h = name.slice(5).replace(/_/g, '-').toLowerCase()
    return (r) => header(r, h)
  }
  // Every other variable (a map, $host, $uri...) through the template compiler; none before routing.
  const t = compileTemplate(`\${${name}}`, scope)
  return (r) => r.ctx === undefined ? undefined : t.render(r.ctx)
}

/** Compiles a log format (nginx's log_format syntax: `$name`, `${name}`). Throws TemplateError on an unknown variable. */
export function compileLogFormat (name: string, source: string, escape: LogEscape, scope: CompileScope): LogFormat {
  const parts: Array<string | LogPart> = []
  let literal = ''
  let i = 0
  while (i < source.length) {
    const ch = source[i] as string
    if (ch !== '$') { literal += ch; i++; continue }
    let v: string
    if (source[i + 1] === '{') {
      const end = source.indexOf('}', i + 2)
      if (end === -1) throw new Error(`unterminated "\${" in log format "${name}"`)
      v = source.slice(i + 2, end)
      i = end + 1
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(source.slice(i + 1))
      if (m === null) throw new Error(`invalid variable name in log format "${name}" at offset ${i}`)
      v = m[0]
      i += 1 + v.length
    }
    parts.push(literal)
    literal = ''
    parts.push(logPart(v, variableGetter(v, scope), escape))
  }
  parts.push(literal)
  return { name, source, escape, parts }
}

const HEX = '0123456789ABCDEF'
const NEEDS_DEFAULT = /["\\\x00-\x1f\x7f-\uffff]/
const NEEDS_JSON = /["\\\x00-\x1f]/

/** nginx's ngx_http_log_escape: `"`, `\`, bytes below 0x20 and from 0x7f as `\xHH`. */
export function escapeDefault (v: string): string {
  if (!NEEDS_DEFAULT.test(v)) return v
  let out = ''
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) { out += v[i] as string; continue }
    // Header values and the target are one byte per character (latin1); other text (a decoded $uri) is UTF-8 on the wire.
    const bytes = c <= 0xff ? [c] : Buffer.from(String.fromCodePoint(v.codePointAt(i) as number), 'utf8')
    if (c >= 0xd800 && c <= 0xdbff) i++
    for (const b of bytes) out += `\\x${HEX[b >> 4] as string}${HEX[b & 15] as string}`
  }
  return out
}

/** nginx's escape=json: `"` and `\` backslashed, control bytes as \n, \r, \t, \b, \f or \u00XX. */
export function escapeJson (v: string): string {
  if (!NEEDS_JSON.test(v)) return v
  return JSON.stringify(v).slice(1, -1)
}

/** One access line for `r` (with its newline). */
export function renderLine (f: LogFormat, r: ExchangeRecord): string {
  const parts = f.parts
  let out = parts[0] as string
  for (let i = 1; i < parts.length; i += 2) out += (parts[i] as LogPart)(r) + (parts[i + 1] as string)
  return out + '\n'
}
