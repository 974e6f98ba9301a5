import type { ResolvedConfig, ResolvedLocation, ResolvedServer } from '../config/model.js'
import type { ExchangeRecord, UpstreamTry } from '../log/exchange-record.js'
import { type CounterChild, type Family, type GaugeChild, type HistogramChild, type MetricsRegistry } from './registry.js'

/** Index by status / 100: '1xx' ... '5xx' (anything else is counted as 'other', index 0). */
const CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'] as const

/** The series one location (or a server, for requests no location answered) updates per request, resolved at startup. */
export interface RequestMeter {
  readonly requests: readonly CounterChild[]
  readonly duration: HistogramChild
}

/** The series of one upstream server, updated per try. */
export interface UpstreamMeter {
  readonly responseTime: HistogramChild
  readonly tries: readonly CounterChild[]
}

/** The families core fills; plugins add theirs through `env.metrics`. */
export interface CoreFamilies {
  readonly requests: Family<CounterChild>
  readonly duration: Family<HistogramChild>
  readonly upstreamTime: Family<HistogramChild>
  readonly upstreamTries: Family<CounterChild>
  readonly limitRejections: Family<CounterChild>
  readonly connections: Family<GaugeChild>
  readonly bytesIn: Family<CounterChild>
  readonly bytesOut: Family<CounterChild>
  readonly generation: Family<GaugeChild>
  readonly reloads: Family<CounterChild>
}

const families = new WeakMap<MetricsRegistry, CoreFamilies>()

export function coreFamilies (r: MetricsRegistry): CoreFamilies {
  let f = families.get(r)
  if (f === undefined) {
    f = {
      requests: r.counter('proxyctl_requests_total', 'Requests answered, by server, location and status class.', ['server', 'location', 'status']),
      duration: r.histogram('proxyctl_request_duration_seconds', 'Time from the request head read to the end of the answer ($request_time), by server and location.', ['server', 'location']),
      upstreamTime: r.histogram('proxyctl_upstream_response_time_seconds', 'Time from the start of a try to the end of the upstream answer ($upstream_response_time), by upstream and server.', ['upstream', 'server']),
      upstreamTries: r.counter('proxyctl_upstream_tries_total', 'Tries at an upstream server, by the try\'s status class (failed tries are 5xx, as nginx notes 502/504).', ['upstream', 'server', 'status']),
      limitRejections: r.counter('proxyctl_limit_rejections_total', 'Requests or connections refused by a limit, by limit (clientMaxBodySize, largeClientHeaderBuffers, ..., limitReq, limitConn) and zone (limitReq and limitConn; "" for the others).', ['limit', 'zone']),
      connections: r.gauge('proxyctl_client_connections', 'Open client connections by state, as stub_status: reading (no request yet), writing (a request in progress or a tunnel), waiting (idle keep-alive).', ['listen', 'state']),
      bytesIn: r.counter('proxyctl_client_received_bytes_total', 'Bytes read from clients, by listen address (closed connections and open ones).', ['listen']),
      bytesOut: r.counter('proxyctl_client_sent_bytes_total', 'Bytes written to clients, by listen address (closed connections and open ones).', ['listen']),
      generation: r.gauge('proxyctl_config_generation', 'Generation of the config in force: 1 at start, one more per reload.', [], 'max'),
      reloads: r.counter('proxyctl_config_reloads_total', 'Reloads tried, by result: ok (the new config serves) or failed (the old one kept serving); with workers, each worker counts its own.', ['result'])
    }
    families.set(r, f)
  }
  return f
}

/** The rejections series of a client limit a handler enforces itself (a request body's size or timeout): resolve it at compile time. */
export function limitRejection (r: MetricsRegistry, limit: string): CounterChild {
  return coreFamilies(r).limitRejections.child(limit, '')
}

/** The reload counters (proxyctl_config_reloads_total), resolved once per reload. */
export function reloadCounter (r: MetricsRegistry): { ok: CounterChild, failed: CounterChild } {
  const f = coreFamilies(r)
  return { ok: f.reloads.child('ok'), failed: f.reloads.child('failed') }
}

/** The generation of the config in force, once it serves. */
export function setGeneration (r: MetricsRegistry, generation: number): void {
  coreFamilies(r).generation.child().set(generation)
}

/** The series of one upstream server (its pool calls this once per peer). */
export function upstreamMeter (r: MetricsRegistry, upstream: string, server: string): UpstreamMeter {
  const f = coreFamilies(r)
  return {
    responseTime: f.upstreamTime.child(upstream, server),
    tries: CLASSES.map((c) => f.upstreamTries.child(upstream, server, c))
  }
}

function requestMeter (f: CoreFamilies, server: ResolvedServer, location: string): RequestMeter {
  const name = serverLabel(server)
  return { requests: CLASSES.map((c) => f.requests.child(name, location, c)), duration: f.duration.child(name, location) }
}

/** A server as the metrics and the status page name it: its first name, else its key path. */
export function serverLabel (server: ResolvedServer): string {
  return server.primaryName !== '' ? server.primaryName : server.keyPath
}

const kMeter = Symbol('proxyctl.meter')
type Metered = { [kMeter]?: RequestMeter }
const kRejected = Symbol('proxyctl.rejected')
type Counted = { [kRejected]?: CounterChild }

/** A limitReq or limitConn refusal (not a dry run's) into its zone's series; nothing when metrics are off. */
export function countZoneRejection (zone: object): void {
  const c = (zone as Counted)[kRejected]
  if (c !== undefined) c.value++
}

/** Resolves every location's and server's series once, before serving. */
export function installMeters (config: ResolvedConfig): void {
  const f = coreFamilies(config.metrics.registry)
  // At start; a reload sets it once the new config serves (start.ts).
  if (config.metrics.generation === 1) f.generation.child().set(1)
  for (const zone of config.limitZones.req.values()) (zone as Counted)[kRejected] = f.limitRejections.child('limitReq', zone.name)
  for (const zone of config.limitZones.conn.values()) (zone as Counted)[kRejected] = f.limitRejections.child('limitConn', zone.name)
  for (const server of config.servers) {
    ;(server as Metered)[kMeter] = requestMeter(f, server, '')
    for (const loc of server.all) (loc as Metered)[kMeter] = requestMeter(f, server, loc.key)
  }
}

function statusClass (status: number): number {
  const c = (status / 100) | 0
  return c >= 1 && c <= 5 ? c : 0
}

function meterTry (t: UpstreamTry): void {
  const m = t.meter
  if (m === undefined) return
  ;(m.tries[statusClass(t.status === 0 ? 502 : t.status)] as CounterChild).value++
  if (t.response >= 0) m.responseTime.observe(t.response / 1000)
}

/**
 * One finished request into its location's series (its server's when no location answered, the
 * listener's default server's when it was refused before routing). Called once per request,
 * where the access line is written; a tunnel counts its 101 when it opens, and no duration.
 */
export function meterRequest (r: ExchangeRecord, status: number, end: number, fallback: ResolvedServer): void {
  const ctx = r.ctx
  const owner: ResolvedLocation | ResolvedServer = ctx === undefined ? fallback : ctx.location ?? ctx.server
  const m = (owner as Metered)[kMeter]
  if (m === undefined) return
  ;(m.requests[statusClass(status)] as CounterChild).value++
  if (status !== 101) m.duration.observe((end - r.start) / 1000)
  const tries = r.tries
  if (tries !== undefined) for (let i = 0; i < tries.length; i++) meterTry(tries[i] as UpstreamTry)
}

/** Upstream states, as a Prometheus state set: each server has one series per state, 1 for the one it is in. */
export const UPSTREAM_STATES = ['up', 'down', 'failed', 'unhealthy'] as const
export type UpstreamState = typeof UPSTREAM_STATES[number]

/** The families an upstream pool sets at each scrape (its own series are its own business). */
export function upstreamFamilies (r: MetricsRegistry): { state: Family<GaugeChild>, backupInUse: Family<GaugeChild>, connections: Family<GaugeChild> } {
  return {
    // With workers, a state is 1 when any worker sees it.
    state: r.gauge('proxyctl_upstream_server_state', 'Upstream server state: up; down (configured down); failed (maxFails reached within failTimeout); unhealthy (active health check). 1 for the state it is in.', ['upstream', 'server', 'backup', 'state'], 'max'),
    backupInUse: r.gauge('proxyctl_upstream_backup_in_use', '1 when no primary server of the upstream is usable and its backups answer.', ['upstream'], 'max'),
    connections: r.gauge('proxyctl_upstream_connections', 'Connections to an upstream server: active (an exchange on it) and idle (kept alive).', ['upstream', 'server', 'state'])
  }
}

/** Open WebSocket tunnels (and message relays) of a location. */
export function tunnelFamily (r: MetricsRegistry): Family<GaugeChild> {
  return r.gauge('proxyctl_websocket_tunnels', 'Open WebSocket tunnels, by server and location.', ['server', 'location'])
}
