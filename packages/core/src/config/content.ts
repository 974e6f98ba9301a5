/**
 * How answers are labelled and what conditional and range requests may ask, as nginx's `types`,
 * `default_type`, `charset`, `if_modified_since` and `max_ranges`: the keys, their defaults, the
 * shape check and how a location inherits them (its own, else the enclosing location's, else the
 * server's, else the top level's, else the default).
 */
import { z } from 'zod'
import { NGINX_MIME_TYPES } from './mime-types.js'
import type { ContentSettings } from './types.js'

export interface ResolvedContent {
  /** Lower-case extension (no dot) → Content-Type. */
  readonly types: ReadonlyMap<string, string>
  /** The type of a name whose extension is not in `types`. */
  readonly defaultType: string
  /** `; charset=X` added to the text types (nginx's charset_types), or undefined (nginx's `charset off`). */
  readonly charset: string | undefined
  /** More ranges than this in one request: the whole file (200). Infinity: no bound. */
  readonly maxRanges: number
  readonly ifModifiedSince: 'exact' | 'before' | 'off'
}

/** nginx's charset_types default: the types `charset` labels. */
export const CHARSET_TYPES: ReadonlySet<string> = new Set(['text/html', 'text/xml', 'text/plain', 'text/vnd.wap.wml', 'application/javascript', 'application/rss+xml'])

function typeMap (entries: Iterable<readonly [string, string | readonly string[]]>, into = new Map<string, string>()): Map<string, string> {
  // A later extension replaces an earlier one, as nginx's types {} does (with a warning there).
  for (const [type, exts] of entries) for (const e of typeof exts === 'string' ? exts.split(/\s+/) : exts) if (e !== '') into.set(e.toLowerCase(), type)
  return into
}

export const CONTENT_DEFAULTS: ResolvedContent = {
  types: typeMap(NGINX_MIME_TYPES),
  // The stock nginx.conf's `default_type application/octet-stream` (nginx's built-in is text/plain).
  defaultType: 'application/octet-stream',
  charset: undefined,
  maxRanges: Infinity,
  ifModifiedSince: 'exact'
}

/** The shape of the keys the top level, a server and a location may set. */
export const contentKeys = {
  types: z.record(z.string(), z.union([z.string(), z.array(z.string().regex(/^[^\s.]+$/, { error: 'extensions without a dot or spaces' }))]))
    .superRefine((types, ctx) => {
      // Checked here, not as the record's key schema, so the message names the key.
      for (const key of Object.keys(types)) {
        if (!/^[^\s/]+\/[^\s/]+$/.test(key)) ctx.addIssue({ code: 'custom', path: [key], message: 'keys are MIME types ("text/html")' })
      }
    }).optional(),
  replaceTypes: z.boolean().optional(),
  defaultType: z.string().min(1).optional(),
  charset: z.union([z.string().regex(/^[A-Za-z0-9._:-]+$/, { error: 'a charset name ("utf-8")' }), z.literal(false)]).optional(),
  maxRanges: z.number().int().min(0).optional(),
  ifModifiedSince: z.enum(['exact', 'before', 'off']).optional()
}

/** A scope's content settings over what encloses it. */
export function resolveContent (own: ContentSettings, outer: ResolvedContent): ResolvedContent {
  if (own.types === undefined && own.replaceTypes === undefined && own.defaultType === undefined && own.charset === undefined &&
    own.maxRanges === undefined && own.ifModifiedSince === undefined) return outer
  let types = outer.types
  if (own.types !== undefined || own.replaceTypes === true) {
    types = typeMap(Object.entries(own.types ?? {}), own.replaceTypes === true ? new Map() : new Map(outer.types))
  }
  return {
    types,
    defaultType: own.defaultType ?? outer.defaultType,
    charset: own.charset === undefined ? outer.charset : own.charset === false ? undefined : own.charset,
    maxRanges: own.maxRanges ?? outer.maxRanges,
    ifModifiedSince: own.ifModifiedSince ?? outer.ifModifiedSince
  }
}

/** The Content-Type of a path by its extension (nginx's ngx_http_set_exten: after the last dot of the last segment). */
export function contentTypeOf (uri: string, content: ResolvedContent): string {
  const dot = uri.lastIndexOf('.')
  if (dot === -1 || uri.indexOf('/', dot) !== -1) return content.defaultType
  const ext = uri.slice(dot + 1)
  return content.types.get(ext) ?? content.types.get(ext.toLowerCase()) ?? content.defaultType
}

/** Content-Type with `; charset=X` when `charset` is set and the type is one nginx labels. */
export function withCharset (type: string, content: ResolvedContent): string {
  return content.charset !== undefined && CHARSET_TYPES.has(type) ? `${type}; charset=${content.charset}` : type
}
