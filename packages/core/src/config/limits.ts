/**
 * What one client may send and hold, as nginx's client_* and keepalive_* directives: the keys,
 * their defaults, the shape check and how a location inherits them (its own, else the enclosing
 * location's, else the server's, else the top level's, else nginx's default).
 */
import { z } from 'zod'
import type { ConnectionLimits, RequestLimits, Size } from './types.js'

/** A location's limits, every default applied. Sizes in bytes, times in ms. */
export interface ResolvedRequestLimits {
  /** client_max_body_size; 0: none. */
  readonly clientMaxBodySize: number
  /** client_body_buffer_size: a buffered body beyond this goes to a temp file. */
  readonly clientBodyBufferSize: number
  /** client_body_timeout: between two reads of the body. */
  readonly clientBodyTimeout: number
  /** send_timeout: between two successful writes to the client. */
  readonly sendTimeout: number
  /** keepalive_timeout: an idle keep-alive connection is closed after it; 0: no keep-alive. */
  readonly keepaliveTimeout: number
  /** keepalive_requests: requests served on one connection before it is closed. */
  readonly keepaliveRequests: number
}

/** A server's limits: the location ones plus those read before a location is known. */
export interface ResolvedConnectionLimits extends ResolvedRequestLimits {
  /** client_header_timeout: the whole request head. */
  readonly clientHeaderTimeout: number
  /** large_client_header_buffers: a request line or header line longer than `size` is refused, a head larger than `number × size` too. */
  readonly largeClientHeaderBuffers: { readonly number: number, readonly size: number }
  /** More header lines than this: 400. */
  readonly maxHeaders: number
  /** underscores_in_headers: keep request headers whose name has `_` (else they are dropped). */
  readonly underscoresInHeaders: boolean
}

/** nginx's defaults (64-bit Linux). */
export const LIMIT_DEFAULTS: ResolvedConnectionLimits = {
  clientMaxBodySize: 1024 * 1024,
  clientBodyBufferSize: 16 * 1024,
  clientBodyTimeout: 60_000,
  sendTimeout: 60_000,
  keepaliveTimeout: 75_000,
  keepaliveRequests: 1000,
  clientHeaderTimeout: 60_000,
  largeClientHeaderBuffers: { number: 4, size: 8 * 1024 },
  maxHeaders: 1000,
  underscoresInHeaders: false
}

const SIZE = /^(\d+)([kKmMgG]?)$/
const UNIT: Record<string, number> = { '': 1, k: 1024, m: 1024 * 1024, g: 1024 * 1024 * 1024 }

/** nginx's size syntax: `1024`, `'8k'`, `'1m'`, `'1g'` (or a number of bytes). Undefined when malformed. */
export function parseSize (v: Size): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined
  const m = SIZE.exec(v.trim())
  if (m === null) return undefined
  const n = Number(m[1]) * (UNIT[(m[2] ?? '').toLowerCase()] ?? 1)
  return Number.isSafeInteger(n) ? n : undefined
}

const size = z.union([z.number(), z.string()]).refine((v) => parseSize(v as Size) !== undefined,
  { error: "expected a size: bytes, or a number with k, m or g ('8k', '1m')" })
const ms = z.number().int().min(0)

/** The shape of the keys a location may set. */
export const requestLimitKeys = {
  clientMaxBodySize: size.optional(),
  clientBodyBufferSize: size.optional(),
  clientBodyTimeout: ms.optional(),
  sendTimeout: ms.optional(),
  keepaliveTimeout: ms.optional(),
  keepaliveRequests: z.number().int().min(1).optional()
}

/** The shape of the keys the top level and a server may set. */
export const connectionLimitKeys = {
  ...requestLimitKeys,
  clientHeaderTimeout: z.number().int().min(1).optional(),
  largeClientHeaderBuffers: z.string().refine((v) => parseHeaderBuffers(v) !== undefined,
    { error: "expected 'NUMBER SIZE' as nginx's large_client_header_buffers ('4 8k')" }).optional(),
  maxHeaders: z.number().int().min(1).optional(),
  underscoresInHeaders: z.boolean().optional()
}

function parseHeaderBuffers (v: string): { number: number, size: number } | undefined {
  const [n, s, ...rest] = v.trim().split(/\s+/)
  const number = Number(n)
  const bytes = s === undefined ? undefined : parseSize(s as Size)
  if (rest.length > 0 || !Number.isInteger(number) || number < 1 || bytes === undefined || bytes < 1) return undefined
  return { number, size: bytes }
}

/** A location's limits over what encloses it. Sizes were checked by the schema. */
export function resolveRequestLimits (own: RequestLimits, outer: ResolvedRequestLimits): ResolvedRequestLimits {
  return {
    clientMaxBodySize: own.clientMaxBodySize === undefined ? outer.clientMaxBodySize : parseSize(own.clientMaxBodySize) as number,
    clientBodyBufferSize: own.clientBodyBufferSize === undefined ? outer.clientBodyBufferSize : parseSize(own.clientBodyBufferSize) as number,
    clientBodyTimeout: own.clientBodyTimeout ?? outer.clientBodyTimeout,
    sendTimeout: own.sendTimeout ?? outer.sendTimeout,
    keepaliveTimeout: own.keepaliveTimeout ?? outer.keepaliveTimeout,
    keepaliveRequests: own.keepaliveRequests ?? outer.keepaliveRequests
  }
}

/** The top level's or a server's limits over what encloses it. */
export function resolveConnectionLimits (own: ConnectionLimits, outer: ResolvedConnectionLimits): ResolvedConnectionLimits {
  return {
    ...resolveRequestLimits(own, outer),
    clientHeaderTimeout: own.clientHeaderTimeout ?? outer.clientHeaderTimeout,
    largeClientHeaderBuffers: own.largeClientHeaderBuffers === undefined ? outer.largeClientHeaderBuffers : parseHeaderBuffers(own.largeClientHeaderBuffers) as { number: number, size: number },
    maxHeaders: own.maxHeaders ?? outer.maxHeaders,
    underscoresInHeaders: own.underscoresInHeaders ?? outer.underscoresInHeaders
  }
}
