/**
 * Limit zones shared by several proxyctl processes through one Redis: limit_req's buckets and
 * limit_conn's counts updated atomically by Lua scripts (EVALSHA), on Redis's clock, so every
 * process charges the same bucket. Counts are leases that their process renews: a process that
 * dies stops renewing, and its counts expire.
 *
 * Redis being down never stops serving: the zone counts in this process instead (one warn line
 * per outage, an info line when Redis is back, `fallbacks` counted for metrics).
 */
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Redis as RedisClient } from 'ioredis'
import type { BucketVerdict } from './leaky-bucket.js'

/** How long a limit_conn count outlives its process's last renewal (ms). */
export const CONN_LEASE_MS = 30_000
/** Longest wait for one Redis call before the request is counted locally (ms). */
const COMMAND_TIMEOUT_MS = 500
/** After a failure, how long requests count locally before Redis is tried again (ms). */
const RETRY_MS = 1000

const LIMIT_REQ_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local ex, la = {}, {}
local excess = 0
local function keep (i, e, l, rate)
  redis.call('HSET', KEYS[i], 'e', e, 'l', l)
  redis.call('PEXPIRE', KEYS[i], math.floor((e + 1000) * 1000 / rate) + 1000)
end
local function drain (e, l, rate)
  local ms = now - l
  if ms < -60000 then ms = 1 elseif ms < 0 then ms = 0 end
  local x = e - math.floor(rate * ms / 1000) + 1000
  if x < 0 then x = 0 end
  return x, ms
end
for i = 1, n do
  local rate, burst = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  local v = redis.call('HMGET', KEYS[i], 'e', 'l')
  if not v[1] then
    if i == n then keep(i, 0, now, rate) end
    ex[i] = 0; la[i] = 0; excess = 0
  else
    local e, l = tonumber(v[1]), tonumber(v[2])
    local x, ms = drain(e, l, rate)
    if x > burst then return {2, 0, x, i - 1} end
    if i == n then
      if ms ~= 0 then l = now end
      keep(i, x, l, rate)
      excess = x
    end
    ex[i] = e; la[i] = l
  end
end
local lastDelay = tonumber(ARGV[3 * n])
local maxd = 0
if excess > lastDelay then maxd = math.floor((excess - lastDelay) * 1000 / tonumber(ARGV[3 * n - 2])) end
local which = n
for i = n - 1, 1, -1 do
  local rate, delay = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i])
  local x, ms = drain(ex[i], la[i], rate)
  local l = la[i]
  if ms ~= 0 then l = now end
  keep(i, x, l, rate)
  if x > delay then
    local d = math.floor((x - delay) * 1000 / rate)
    if d > maxd then maxd = d; excess = x; which = i end
  end
end
if maxd == 0 then return {0, 0, 0, 0} end
return {1, maxd, excess, which - 1}
`

const LIMIT_CONN_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[i + 2]) then
    for j = 1, i - 1 do redis.call('ZREM', KEYS[j], ARGV[2]) end
    return i
  end
  redis.call('ZADD', KEYS[i], now + lease, ARGV[2])
  redis.call('PEXPIRE', KEYS[i], lease)
end
return 0
`

const RENEW_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], lease)
end
return 0
`

type ScriptedClient = RedisClient & {
  limitReq: (numKeys: number, ...args: Array<string | number>) => Promise<[number, number, number, number]>
  limitConn: (numKeys: number, ...args: Array<string | number>) => Promise<number>
  limitRenew: (numKeys: number, ...args: Array<string | number>) => Promise<number>
}

/** What a Redis link did, for metrics: outages seen, and decisions made locally because Redis was down. */
export interface RedisLinkStats { readonly url: string, readonly up: boolean, readonly outages: number, readonly fallbacks: number }

/** One Redis (by URL) and the zones on it; created at config resolution, connected by `open`. */
export class RedisLink {
  private client: ScriptedClient | undefined
  private log: FastifyBaseLogger | undefined
  private downSince: number | undefined = undefined
  private retryAt = 0
  private renewTimer: NodeJS.Timeout | undefined
  /** Counts this process holds: member → its keys (renewed until released). */
  private readonly held = new Map<string, readonly string[]>()
  private readonly instance = randomBytes(6).toString('hex')
  private seq = 0
  outages = 0
  fallbacks = 0

  constructor (readonly url: string) {}

  get stats (): RedisLinkStats { return { url: this.url, up: this.downSince === undefined && this.client !== undefined, outages: this.outages, fallbacks: this.fallbacks } }

  /** Connects (waiting at most `waitMs` for Redis; serving starts either way, counting locally until it answers). */
  async open (log: FastifyBaseLogger, waitMs = 2000): Promise<void> {
    if (this.client !== undefined) return
    this.log = log
    const { Redis } = await import('ioredis')
    const target = this.url.startsWith('unix:') ? { path: this.url.slice(5) } : {}
    const options = { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: COMMAND_TIMEOUT_MS, lazyConnect: true, retryStrategy: (n: number) => Math.min(n * 100, RETRY_MS) }
    const client = (this.url.startsWith('unix:') ? new Redis({ ...target, ...options }) : new Redis(this.url, options)) as ScriptedClient
    client.defineCommand('limitReq', { lua: LIMIT_REQ_LUA })
    client.defineCommand('limitConn', { lua: LIMIT_CONN_LUA })
    client.defineCommand('limitRenew', { lua: RENEW_LUA })
    client.on('error', () => { this.down('connection error') })
    client.on('close', () => { this.down('connection closed') })
    client.on('ready', () => { this.upAgain() })
    this.client = client
    const ready = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs)
      client.once('ready', () => { clearTimeout(timer); resolve() })
    })
    client.connect().catch(() => { this.down('connection refused') })
    await ready
    if (client.status !== 'ready') this.down('not reachable at start')
    this.renewTimer = setInterval(() => { this.renew() }, CONN_LEASE_MS / 3)
    this.renewTimer.unref()
  }

  close (): void {
    clearInterval(this.renewTimer)
    const c = this.client
    this.client = undefined
    c?.removeAllListeners('close')
    c?.on('error', () => {})
    c?.disconnect()
  }

  /** Whether to ask Redis now (false: count locally). */
  usable (): boolean {
    if (this.client === undefined) return false
    if (this.downSince === undefined) return true
    if (this.client.status !== 'ready') return false
    const now = Date.now()
    if (now < this.retryAt) return false
    this.retryAt = now + RETRY_MS
    return true
  }

  /** Redis failed or went away: one warn line per outage. */
  down (reason: string): void {
    this.retryAt = Date.now() + RETRY_MS
    if (this.downSince !== undefined || this.client === undefined) return
    this.downSince = Date.now()
    this.outages++
    this.log?.warn({ code: 'PROXYCTL_LIMIT_STORE_UNAVAILABLE', store: this.url, reason },
      `limit zones on redis ${this.url} unavailable (${reason}): limits count in this process until it is back`)
  }

  private upAgain (): void {
    if (this.downSince === undefined) return
    const ms = Date.now() - this.downSince
    this.downSince = undefined
    this.log?.info({ code: 'PROXYCTL_LIMIT_STORE_RESTORED', store: this.url, downMs: ms },
      `limit zones on redis ${this.url} available again after ${ms} ms`)
  }

  /** The limit_req verdict for buckets `keys` with [rate, burst, delay] each; rejects when Redis fails. */
  async checkBuckets (keys: readonly string[], params: readonly number[]): Promise<BucketVerdict> {
    const r = await (this.client as ScriptedClient).limitReq(keys.length, ...keys, ...params)
    this.upAgain()
    if (r[0] === 0) return { kind: 'pass' }
    if (r[0] === 1) return { kind: 'delay', delay: Number(r[1]), excess: Number(r[2]), index: Number(r[3]) }
    return { kind: 'busy', excess: Number(r[2]), index: Number(r[3]) }
  }

  /** Counts one request on `keys` (each below its max); returns the member to release, or the index refused. */
  async acquire (keys: readonly string[], maxes: readonly number[]): Promise<{ member: string } | { refused: number }> {
    const member = `${this.instance}:${++this.seq}`
    const r = await (this.client as ScriptedClient).limitConn(keys.length, ...keys, CONN_LEASE_MS, member, ...maxes)
    this.upAgain()
    if (r !== 0) return { refused: r - 1 }
    this.held.set(member, keys)
    return { member }
  }

  release (member: string): void {
    const keys = this.held.get(member)
    if (keys === undefined) return
    this.held.delete(member)
    const c = this.client
    if (c === undefined || c.status !== 'ready') return // the lease expires by itself
    const p = c.multi()
    for (const k of keys) p.zrem(k, member)
    p.exec().catch(() => { this.down('release failed') })
  }

  private renew (): void {
    const c = this.client
    if (c === undefined || c.status !== 'ready' || this.held.size === 0) return
    const keys: string[] = []
    const members: string[] = []
    for (const [m, ks] of this.held) for (const k of ks) { keys.push(k); members.push(m) }
    c.limitRenew(keys.length, ...keys, CONN_LEASE_MS, ...members).catch(() => { this.down('renewal failed') })
  }
}
