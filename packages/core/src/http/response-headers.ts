/**
 * nginx's add_header: response headers a level adds to its answers, compiled at config load and
 * rendered per answer. The one place response headers from the config are rendered: the
 * location's `addHeaders` (Fastify answers through app.ts's onSend hook, proxied answers and the
 * proxy's own error pages through the exchange) and `respond()`'s own `headers`.
 */
import type { FastifyReply } from 'fastify'
import { z } from 'zod'
import type { ConfigError } from '../errors.js'
import type { RequestContext } from '../routing/request-context.js'
import type { Template } from '../variables/types.js'
import { asHeaderValue } from './header-value.js'

/** One header to add. */
export interface AddHeader {
  /** As written (its case goes on the wire). */
  readonly name: string
  readonly lower: string
  readonly value: Template
  /** nginx's `always`: on every status, not only the ones nginx's headers filter lets through. */
  readonly always: boolean
  /** ETag and Last-Modified replace the answer's own (an empty value removes it), as nginx's headers filter does. */
  readonly replaces: boolean
}

/** A level's headers (its own, else the enclosing level's), in the order written. */
export type AddHeaders = readonly AddHeader[]

/** Headers nginx's add_header sets instead of adding (ngx_http_set_response_header, ngx_http_set_last_modified). */
const REPLACING = new Set(['etag', 'last-modified'])

/** The statuses nginx's headers filter adds headers to without `always` (ngx_http_headers_filter). */
const ADD_STATUSES = new Set([200, 201, 204, 206, 301, 302, 303, 304, 307, 308])

/** The shape of `addHeaders`: name → template, or `{ value, always }`. */
export const addHeadersKey = z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'header names are tokens (letters, digits, "-"...)' }),
  z.union([z.string(), z.strictObject({ value: z.string(), always: z.boolean().optional() })],
    { error: "expected a template or { value, always? }" })).optional()

export type AddHeadersConfig = Record<string, string | { value: string, always?: boolean }>

/**
 * Compiles a level's `addHeaders`; undefined (inherit) when the level sets none. `{}` is a list of
 * none: it clears what would be inherited. `compile` names the key path of a bad template.
 * `always`: every entry is (respond()'s headers).
 */
export function compileAddHeaders (spec: AddHeadersConfig | undefined, inherited: AddHeaders | undefined,
  compile: (source: string, keyPath: string) => Template, keyPath: string, errors: ConfigError[], always = false): AddHeaders | undefined {
  if (spec === undefined) return inherited
  const out: AddHeader[] = []
  for (const [name, v] of Object.entries(spec)) {
    const source = typeof v === 'string' ? v : v.value
    const at = `${keyPath}[${JSON.stringify(name)}]`
    try {
      const lower = name.toLowerCase()
      out.push({ name, lower, replaces: REPLACING.has(lower), value: compile(source, typeof v === 'string' ? at : `${at}.value`), always: always || (typeof v !== 'string' && v.always === true) })
    } catch (err) { errors.push(err as ConfigError) }
  }
  // None: nothing to do per answer (one check), and nested levels inherit the none.
  return out.length === 0 ? undefined : out
}

/**
 * Renders the headers that apply to an answer with `status` and hands each to `add`; a value
 * that renders empty is not sent (nginx), except that a replacing one (`replaces`) is handed
 * over empty: the answer's own is then removed.
 */
export function renderAddHeaders (list: AddHeaders, ctx: RequestContext, status: number,
  add: (name: string, lower: string, value: string, replaces: boolean) => void): void {
  const any = ADD_STATUSES.has(status)
  for (const h of list) {
    if (!any && !h.always) continue
    const v = h.value.render(ctx)
    if (v !== '') add(h.name, h.lower, asHeaderValue(v), h.replaces)
    else if (h.replaces) add(h.name, h.lower, '', true)
  }
}

/** Adds to a Fastify reply before it is sent: a header the answer has already stays, the added one goes beside it. */
export function addToReply (list: AddHeaders, ctx: RequestContext, reply: FastifyReply): void {
  renderAddHeaders(list, ctx, reply.statusCode, (_name, lower, value, replaces) => {
    const prev = replaces ? undefined : reply.getHeader(lower)
    if (value === '') reply.removeHeader(lower)
    else reply.header(lower, prev === undefined ? value : [...(Array.isArray(prev) ? prev.map(String) : [String(prev)]), value])
  })
}

/** The addHeaders of the location answering (the server's before a location is chosen). */
export function addHeadersInForce (ctx: RequestContext): AddHeaders | undefined {
  return ctx.location !== undefined ? ctx.location.addHeaders : ctx.server.addHeaders
}

/** The headers for an answer proxyctl writes on the raw response (sendErrorPage), as an object. */
export function addHeadersObject (list: AddHeaders | undefined, ctx: RequestContext, status: number): Record<string, string | string[]> | undefined {
  if (list === undefined) return undefined
  const out: Record<string, string | string[]> = {}
  renderAddHeaders(list, ctx, status, (_name, lower, value, replaces) => {
    if (value === '') return
    const prev = replaces ? undefined : out[lower]
    out[lower] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value]
  })
  return out
}

/** Adds to a flat name/value list (a proxied head); a replacing header's earlier entries go first. */
export function addToHeaderList (list: AddHeaders, ctx: RequestContext, status: number, headers: string[]): void {
  renderAddHeaders(list, ctx, status, (name, lower, value, replaces) => {
    if (replaces) {
      for (let i = headers.length - 2; i >= 0; i -= 2) if ((headers[i] as string).toLowerCase() === lower) headers.splice(i, 2)
    }
    if (value !== '') headers.push(name, value)
  })
}
