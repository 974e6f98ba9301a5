/**
 * nginx's preaccess phase: limit_req, then limit_conn, once per request (the first location or
 * server fallback with limits that the request reaches, as nginx's `r->main->limit_*_status`),
 * before allow/deny, plugins and the handler.
 *
 * A refused request is answered with the configured status by the location's route (its error
 * pages and addHeaders apply); a delayed one waits on a timer; a counted one (limit_conn) is
 * released when its answer is over or its connection closes (a WebSocket tunnel: when it closes).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import type { LimitReqZone, LogLevelName, ResolvedRateLimits } from '../config/rate-limits.js'
import { upgradeOf } from '../http/upgrade.js'
import { countZoneRejection } from '../metrics/proxy-metrics.js'
import type { RequestContext } from '../routing/request-context.js'
import { requestLine } from '../server/guard.js'
import { checkBucket, checkBuckets, type BucketLimit, type BucketVerdict } from './leaky-bucket.js'
import type { RedisLink } from './redis-store.js'

/** Called once the limits decided: `refusal` is the status to answer with, undefined to go on. */
export type LimitNext = (refusal?: number) => void

function logLine (log: FastifyBaseLogger, level: LogLevelName, ctx: RequestContext, fields: Record<string, unknown>, message: string): void {
  const client = ctx.socket.remoteAddress ?? 'unix:'
  const request = requestLine(ctx.req, ctx.requestUri)
  const server = ctx.server.primaryName
  log[level]({ ...fields, client, serverName: server, request, host: ctx.host },
    `${message}, client: ${client}, server: ${server}, request: "${request}", host: "${ctx.host}"`)
}

const thousandths = (x: number): string => `${Math.floor(x / 1000)}.${String(x % 1000).padStart(3, '0')}`

/** Runs the limits in force for `ctx`, then `next`. Synchronous for memory zones that neither delay nor wait. */
export function runLimits (ctx: RequestContext, res: ServerResponse, limits: ResolvedRateLimits, log: FastifyBaseLogger, next: LimitNext): void {
  if (limits.req.length === 0 || ctx.limitReqStatus !== undefined) { runConn(ctx, res, limits, log, next); return }
  // One limit on a memory zone (the common case): the same steps without lists.
  const only = limits.req.length === 1 && limits.reqRedis === undefined ? limits.req[0] : undefined
  if (only !== undefined) {
    const key = only.zone.key.render(ctx)
    if (key !== '' && key.length <= 65535) {
      const zone = only.zone
      reqVerdict(ctx, res, limits, log, checkBucket(zone.local, key, zone.rate, only.burst, only.delay, Date.now()), [zone], next)
      return
    }
  }
  const entries: BucketLimit[] = []
  const zones: LimitReqZone[] = []
  for (const l of limits.req) {
    const key = l.zone.key.render(ctx)
    if (key === '') continue
    if (key.length > 65535) {
      logLine(log, 'error', ctx, { code: 'PROXYCTL_LIMIT_KEY_TOO_LONG', zone: l.zone.name, limit: 'limitReq' }, `the value of the "${l.zone.key.source}" key is more than 65535 bytes`)
      continue
    }
    entries.push({ table: l.zone.local, key, rate: l.zone.rate, burst: l.burst, delay: l.delay })
    zones.push(l.zone)
  }
  if (entries.length === 0) { runConn(ctx, res, limits, log, next); return }
  const decided = (v: BucketVerdict): void => { reqVerdict(ctx, res, limits, log, v, zones, next) }
  const link = limits.reqRedis
  if (link !== undefined && link.usable()) {
    const params: number[] = []
    for (const e of entries) params.push(e.rate, e.burst, e.delay)
    link.checkBuckets(entries.map((e, i) => `proxyctl:lr:${(zones[i] as LimitReqZone).name}:${e.key}`), params).then(decided, (err: Error) => {
      link.down(err.message)
      decided(local(link, entries))
    })
    return
  }
  decided(link === undefined ? checkBuckets(entries, Date.now()) : local(link, entries))
}

function local (link: RedisLink, entries: BucketLimit[]): BucketVerdict {
  link.fallbacks++
  return checkBuckets(entries, Date.now())
}

function reqVerdict (ctx: RequestContext, res: ServerResponse, limits: ResolvedRateLimits, log: FastifyBaseLogger, v: BucketVerdict, zones: LimitReqZone[], next: LimitNext): void {
  const dry = limits.reqDryRun
  if (v.kind === 'pass') {
    ctx.limitReqStatus = 'PASSED'
    runConn(ctx, res, limits, log, next)
    return
  }
  const zone = (zones[v.index] as LimitReqZone).name
  if (v.kind === 'busy') {
    ctx.limitReqStatus = dry ? 'REJECTED_DRY_RUN' : 'REJECTED'
    logLine(log, limits.reqLogLevel, ctx, { code: 'PROXYCTL_LIMIT_REQ_REJECTED', zone, excess: v.excess / 1000, limit: 'limitReq', dryRun: dry },
      `limiting requests${dry ? ', dry run' : ''}, excess: ${thousandths(v.excess)} by zone "${zone}"`)
    if (dry) runConn(ctx, res, limits, log, next)
    else { countZoneRejection(zones[v.index] as LimitReqZone); next(limits.reqStatus) }
    return
  }
  ctx.limitReqStatus = dry ? 'DELAYED_DRY_RUN' : 'DELAYED'
  logLine(log, limits.reqDelayLogLevel, ctx, { code: 'PROXYCTL_LIMIT_REQ_DELAYED', zone, excess: v.excess / 1000, delayMs: v.delay, limit: 'limitReq', dryRun: dry },
    `delaying request${dry ? ', dry run' : ''}, excess: ${thousandths(v.excess)}, by zone "${zone}"`)
  if (dry) { runConn(ctx, res, limits, log, next); return }
  // The wait is a timer; a client that goes away meanwhile is not served.
  const socket = ctx.socket
  const gone = (): void => { clearTimeout(timer) }
  const timer = setTimeout(() => {
    socket.off('close', gone)
    runConn(ctx, res, limits, log, next)
  }, v.delay)
  socket.once('close', gone)
}

function runConn (ctx: RequestContext, res: ServerResponse, limits: ResolvedRateLimits, log: FastifyBaseLogger, next: LimitNext): void {
  if (limits.conn.length === 0 || ctx.limitConnStatus !== undefined) { next(); return }
  const keys: string[] = []
  const which: number[] = []
  limits.conn.forEach((l, i) => {
    const key = l.zone.key.render(ctx)
    if (key === '') return
    if (key.length > 255) {
      logLine(log, 'error', ctx, { code: 'PROXYCTL_LIMIT_KEY_TOO_LONG', zone: l.zone.name, limit: 'limitConn' }, `the value of the "${l.zone.key.source}" key is more than 255 bytes`)
      return
    }
    keys.push(key); which.push(i)
  })
  if (keys.length === 0) { next(); return }
  ctx.limitConnStatus = 'PASSED'
  const link = limits.connRedis
  if (link !== undefined && link.usable()) {
    link.acquire(keys.map((k, j) => `proxyctl:lc:${limits.conn[which[j] as number]?.zone.name as string}:${k}`), which.map((i) => limits.conn[i]?.max as number)).then((r) => {
      if ('member' in r) { onDone(ctx, res, () => { link.release(r.member) }); next(); return }
      connRefused(ctx, limits, log, which[r.refused] as number, false, next)
    }, (err: Error) => {
      link.down(err.message)
      link.fallbacks++
      connLocal(ctx, res, limits, log, keys, which, next)
    })
    return
  }
  if (link !== undefined) link.fallbacks++
  connLocal(ctx, res, limits, log, keys, which, next)
}

function connLocal (ctx: RequestContext, res: ServerResponse, limits: ResolvedRateLimits, log: FastifyBaseLogger, keys: string[], which: number[], next: LimitNext): void {
  for (let j = 0; j < keys.length; j++) {
    const l = limits.conn[which[j] as number]
    const ok = l?.zone.local.acquire(keys[j] as string, l.max)
    if (ok !== true) {
      for (let k = 0; k < j; k++) limits.conn[which[k] as number]?.zone.local.release(keys[k] as string)
      connRefused(ctx, limits, log, which[j] as number, ok === undefined, next)
      return
    }
  }
  onDone(ctx, res, () => { for (let j = 0; j < keys.length; j++) limits.conn[which[j] as number]?.zone.local.release(keys[j] as string) })
  next()
}

function connRefused (ctx: RequestContext, limits: ResolvedRateLimits, log: FastifyBaseLogger, index: number, full: boolean, next: LimitNext): void {
  const zone = limits.conn[index]?.zone.name as string
  const dry = limits.connDryRun
  ctx.limitConnStatus = dry ? 'REJECTED_DRY_RUN' : 'REJECTED'
  if (full) logLine(log, 'error', ctx, { code: 'PROXYCTL_LIMIT_ZONE_FULL', zone, limit: 'limitConn' }, `could not allocate node in zone "${zone}"`)
  else {
    logLine(log, limits.connLogLevel, ctx, { code: 'PROXYCTL_LIMIT_CONN_REJECTED', zone, max: limits.conn[index]?.max, limit: 'limitConn', dryRun: dry },
      `limiting connections${dry ? ', dry run,' : ''} by zone "${zone}"`)
  }
  if (dry) next()
  else { countZoneRejection(limits.conn[index]?.zone as object); next(limits.connStatus) }
}

/** Runs `release` once, when the request is over: its answer done or its connection closed; a tunnel's when the tunnel closes. */
function onDone (ctx: RequestContext, res: ServerResponse, release: () => void): void {
  let done = false
  const once = (): void => { if (!done) { done = true; release() } }
  if (upgradeOf(ctx.req as IncomingMessage) !== undefined) {
    const socket = ctx.socket
    socket.once('close', once)
    // An upgrade answered without a tunnel (a refusal, an upstream's non-101) is over when its answer is.
    res.once('finish', () => { if (ctx.record?.tunneled !== true) { socket.off('close', once); once() } })
    return
  }
  res.once('close', once)
}
