/**
 * nginx's limit_req_zone / limit_conn_zone (top level) and limit_req / limit_conn (top, server,
 * location): the keys, their shape, their defaults and how a level inherits them. A level that
 * sets `limitReq` (or `limitConn`) replaces the enclosing level's list, as nginx's "inherited if
 * and only if there are no limit_req directives on the current level"; the status, log level and
 * dry run are inherited one by one.
 */
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import { compileTemplate } from '../variables/compile.js'
import type { CompileScope, Template } from '../variables/types.js'
import { MemoryBuckets, MemoryCounts } from '../limits/leaky-bucket.js'
import { RedisLink } from '../limits/redis-store.js'
import { parseSize } from './limits.js'
import type { LimitConnConfig, LimitReqConfig, LimitStore, ProxyConfig, RateLimitSettings, Size } from './types.js'

/** nginx's state sizes: a limit_req state is 64 bytes, a limit_conn one 32 ("1m" keeps 16384 and 32768 keys). */
const REQ_STATE_BYTES = 64
const CONN_STATE_BYTES = 32
const DEFAULT_ZONE_SIZE = 10 * 1024 * 1024
/** nginx's `nodelay`: a delay threshold no excess reaches. */
export const NO_DELAY = 2 ** 52

export type LogLevelName = 'info' | 'warn' | 'error'

export interface LimitReqZone {
  readonly name: string
  readonly key: Template
  /** Thousandths of a request per second (nginx's `rate`: 10r/s is 10000, 30r/m is 500). */
  readonly rate: number
  /** This process's buckets: the zone's store when memory, the fallback while Redis is down otherwise. */
  readonly local: MemoryBuckets
  readonly redis: RedisLink | undefined
}

export interface LimitConnZone {
  readonly name: string
  readonly key: Template
  readonly local: MemoryCounts
  readonly redis: RedisLink | undefined
}

export interface ResolvedLimitReq { readonly zone: LimitReqZone, readonly burst: number, readonly delay: number }
export interface ResolvedLimitConn { readonly zone: LimitConnZone, readonly max: number }

/** The limits in force at a level. `active`: any limitReq or limitConn (else the level costs nothing). */
export interface ResolvedRateLimits {
  readonly active: boolean
  readonly req: readonly ResolvedLimitReq[]
  readonly reqStatus: number
  readonly reqLogLevel: LogLevelName
  /** nginx logs delays one level below refusals. */
  readonly reqDelayLogLevel: LogLevelName
  readonly reqDryRun: boolean
  /** All of `req` on one Redis (else all in memory): one script call decides. */
  readonly reqRedis: RedisLink | undefined
  readonly conn: readonly ResolvedLimitConn[]
  readonly connStatus: number
  readonly connLogLevel: LogLevelName
  readonly connDryRun: boolean
  readonly connRedis: RedisLink | undefined
}

export const RATE_LIMIT_DEFAULTS: ResolvedRateLimits = {
  active: false,
  req: [],
  reqStatus: 503,
  reqLogLevel: 'error',
  reqDelayLogLevel: 'warn',
  reqDryRun: false,
  reqRedis: undefined,
  conn: [],
  connStatus: 503,
  connLogLevel: 'error',
  connDryRun: false,
  connRedis: undefined
}

const store = z.union([z.literal('memory'), z.strictObject({ redis: z.string().regex(/^(redis:\/\/|rediss:\/\/|unix:\/)/, { error: "expected 'redis://HOST:PORT[/DB]', 'rediss://...' or 'unix:/path/to/redis.sock'" }) })],
  { error: "expected 'memory' or { redis: 'redis://HOST:PORT' }" })
const zoneSize = z.union([z.number(), z.string()]).refine((v) => (parseSize(v as Size) ?? 0) >= 32 * 1024,
  { error: "expected a size of at least 32k (nginx's smallest zone): '10m'" })
const level = z.enum(['info', 'notice', 'warn', 'error'])
const status = z.number().int().min(400).max(599)
const limitReq = z.strictObject({
  zone: z.string().min(1),
  burst: z.number().int().min(0).optional(),
  nodelay: z.literal(true).optional(),
  delay: z.number().int().min(0).optional()
})
const limitConn = z.strictObject({ zone: z.string().min(1), max: z.number().int().min(1) })

/** The keys every level may set. */
export const rateLimitKeys = {
  limitReq: z.union([limitReq, z.array(limitReq)], { error: 'expected { zone, burst?, nodelay? | delay? } or a list of them' }).optional(),
  limitReqStatus: status.optional(),
  limitReqLogLevel: level.optional(),
  limitReqDryRun: z.boolean().optional(),
  limitConn: z.union([limitConn, z.array(limitConn)], { error: 'expected { zone, max } or a list of them' }).optional(),
  limitConnStatus: status.optional(),
  limitConnLogLevel: level.optional(),
  limitConnDryRun: z.boolean().optional()
}

/** The zone keys of the top level. */
export const rateLimitZoneKeys = {
  limitReqZones: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, { error: 'zone names use letters, digits, "_" and "-"' }), z.strictObject({
    key: z.string(),
    rate: z.string().regex(/^\d+r\/[sm]$/, { error: "expected a rate as nginx writes it: '10r/s' or '30r/m'" }),
    size: zoneSize.optional(),
    store: store.optional()
  })).optional(),
  limitConnZones: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, { error: 'zone names use letters, digits, "_" and "-"' }), z.strictObject({
    key: z.string(),
    size: zoneSize.optional(),
    store: store.optional()
  })).optional()
}

export interface RateLimitZones {
  readonly req: ReadonlyMap<string, LimitReqZone>
  readonly conn: ReadonlyMap<string, LimitConnZone>
  /** Every Redis the zones use, by URL: opened by startProxy, closed with it. */
  readonly redis: ReadonlyMap<string, RedisLink>
}

/** nginx's rate: `10r/s` → 10000, `30r/m` → 500 (thousandths of a request per second). */
export function parseRate (rate: string): number | undefined {
  const m = /^(\d+)r\/([sm])$/.exec(rate)
  if (m === null) return undefined
  const n = Math.floor(Number(m[1]) * 1000 / (m[2] === 'm' ? 60 : 1))
  return n > 0 ? n : undefined
}

/** The top level's zones: templates compiled, stores made (nothing connects yet). */
export function resolveZones (config: ProxyConfig, scope: CompileScope, errors: ConfigError[]): RateLimitZones {
  const redis = new Map<string, RedisLink>()
  const linkOf = (s: LimitStore | undefined): RedisLink | undefined => {
    if (s === undefined || s === 'memory') return undefined
    let link = redis.get(s.redis)
    if (link === undefined) { link = new RedisLink(s.redis); redis.set(s.redis, link) }
    return link
  }
  const key = (source: string, keyPath: string): Template => {
    try { return compileTemplate(source, scope) } catch (err) { errors.push(new ConfigError(keyPath, (err as Error).message)); return compileTemplate('') }
  }
  const req = new Map<string, LimitReqZone>()
  for (const [name, z] of Object.entries(config.limitReqZones ?? {})) {
    const rate = parseRate(z.rate)
    if (rate === undefined) { errors.push(new ConfigError(`limitReqZones.${name}.rate`, 'invalid rate')); continue }
    const bytes = z.size === undefined ? DEFAULT_ZONE_SIZE : parseSize(z.size) as number
    req.set(name, { name, key: key(z.key, `limitReqZones.${name}.key`), rate, local: new MemoryBuckets(Math.floor(bytes / REQ_STATE_BYTES)), redis: linkOf(z.store) })
  }
  const conn = new Map<string, LimitConnZone>()
  for (const [name, z] of Object.entries(config.limitConnZones ?? {})) {
    const bytes = z.size === undefined ? DEFAULT_ZONE_SIZE : parseSize(z.size) as number
    conn.set(name, { name, key: key(z.key, `limitConnZones.${name}.key`), local: new MemoryCounts(Math.floor(bytes / CONN_STATE_BYTES)), redis: linkOf(z.store) })
  }
  return { req, conn, redis }
}

const toList = <T>(v: T | T[] | undefined): T[] | undefined => v === undefined ? undefined : Array.isArray(v) ? v : [v]
const pinoLevel = (l: 'info' | 'notice' | 'warn' | 'error'): LogLevelName => l === 'notice' ? 'info' : l
/** nginx's delay level: one below the refusal level (error → warn, warn → notice, notice and info → info). */
const belowLevel = (l: 'info' | 'notice' | 'warn' | 'error'): LogLevelName => l === 'error' ? 'warn' : 'info'

/** A level's limits over what encloses it. Unknown zones and mixed stores are config errors. */
export function resolveRateLimits (own: RateLimitSettings, outer: ResolvedRateLimits, zones: RateLimitZones, keyPath: string, errors: ConfigError[]): ResolvedRateLimits {
  const at = (key: string): string => keyPath === '' ? key : `${keyPath}.${key}`
  const ownReq = toList<LimitReqConfig>(own.limitReq)
  const ownConn = toList<LimitConnConfig>(own.limitConn)
  const req = ownReq === undefined
    ? outer.req
    : ownReq.flatMap((l, i): ResolvedLimitReq[] => {
      const zone = zones.req.get(l.zone)
      const where = Array.isArray(own.limitReq) ? at(`limitReq[${i}]`) : at('limitReq')
      if (zone === undefined) { errors.push(new ConfigError(`${where}.zone`, `unknown limit_req_zone "${l.zone}" (limitReqZones)`)); return [] }
      if (l.nodelay === true && l.delay !== undefined) { errors.push(new ConfigError(where, '"nodelay" and "delay" cannot both be set')); return [] }
      return [{ zone, burst: (l.burst ?? 0) * 1000, delay: l.nodelay === true ? NO_DELAY : (l.delay ?? 0) * 1000 }]
    })
  const conn = ownConn === undefined
    ? outer.conn
    : ownConn.flatMap((l, i): ResolvedLimitConn[] => {
      const zone = zones.conn.get(l.zone)
      const where = Array.isArray(own.limitConn) ? at(`limitConn[${i}]`) : at('limitConn')
      if (zone === undefined) { errors.push(new ConfigError(`${where}.zone`, `unknown limit_conn_zone "${l.zone}" (limitConnZones)`)); return [] }
      return [{ zone, max: l.max }]
    })
  const oneStore = (links: Array<RedisLink | undefined>, what: string): RedisLink | undefined => {
    if (links.length > 0 && links.some((l) => l !== links[0])) errors.push(new ConfigError(at(what), `the zones of one ${what} list must share one store (all memory, or one Redis)`))
    return links[0]
  }
  const reqLevel = own.limitReqLogLevel
  return {
    active: req.length > 0 || conn.length > 0,
    req,
    reqStatus: own.limitReqStatus ?? outer.reqStatus,
    reqLogLevel: reqLevel === undefined ? outer.reqLogLevel : pinoLevel(reqLevel),
    reqDelayLogLevel: reqLevel === undefined ? outer.reqDelayLogLevel : belowLevel(reqLevel),
    reqDryRun: own.limitReqDryRun ?? outer.reqDryRun,
    reqRedis: ownReq === undefined ? outer.reqRedis : oneStore(req.map((l) => l.zone.redis), 'limitReq'),
    conn,
    connStatus: own.limitConnStatus ?? outer.connStatus,
    connLogLevel: own.limitConnLogLevel === undefined ? outer.connLogLevel : pinoLevel(own.limitConnLogLevel),
    connDryRun: own.limitConnDryRun ?? outer.connDryRun,
    connRedis: ownConn === undefined ? outer.connRedis : oneStore(conn.map((l) => l.zone.redis), 'limitConn')
  }
}
