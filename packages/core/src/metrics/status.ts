import type { FamilySnapshot, MetricsSnapshot } from './registry.js'

/** What `/status.json` answers and the status page draws: the metrics, grouped as an operator reads them. */
export interface StatusDocument {
  time: number
  generation: number
  servers: Array<{ name: string, requests: Record<string, number>, duration: { sum: number, count: number }, locations: Array<{ location: string, requests: Record<string, number>, duration: { sum: number, count: number }, tunnels: number }> }>
  upstreams: Array<{ name: string, backupInUse: boolean, servers: Array<{ server: string, backup: boolean, state: string, tries: Record<string, number>, responseTime: { sum: number, count: number }, active: number, idle: number }> }>
  connections: Record<string, number>
  bytes: { received: number, sent: number }
  limitRejections: Record<string, number>
}

/** A state seen by any worker wins over a milder one. */
const SEVERITY = ['up', 'down', 'failed', 'unhealthy']

export function statusOf (snap: MetricsSnapshot): StatusDocument {
  const byName = new Map(snap.map((f) => [f.name, f]))
  const series = (name: string): FamilySnapshot['series'] => byName.get(name)?.series ?? []
  const doc: StatusDocument = { time: Date.now(), generation: 0, servers: [], upstreams: [], connections: {}, bytes: { received: 0, sent: 0 }, limitRejections: {} }
  for (const s of series('proxyctl_config_generation')) doc.generation = s.value ?? 0

  const servers = new Map<string, StatusDocument['servers'][number]>()
  const server = (name: string): StatusDocument['servers'][number] => {
    let s = servers.get(name)
    if (s === undefined) { s = { name, requests: {}, duration: { sum: 0, count: 0 }, locations: [] }; servers.set(name, s); doc.servers.push(s) }
    return s
  }
  const location = (srv: string, loc: string): StatusDocument['servers'][number]['locations'][number] => {
    const s = server(srv)
    let l = s.locations.find((x) => x.location === loc)
    if (l === undefined) { l = { location: loc, requests: {}, duration: { sum: 0, count: 0 }, tunnels: 0 }; s.locations.push(l) }
    return l
  }
  for (const { labels: [srv = '', loc = '', cls = ''], value = 0 } of series('proxyctl_requests_total')) {
    const s = server(srv)
    s.requests[cls] = (s.requests[cls] ?? 0) + value
    const l = location(srv, loc)
    l.requests[cls] = value
  }
  // A server's latency is its locations' together ('' is the server's own: no location answered).
  for (const { labels: [srv = '', loc = ''], sum = 0, count = 0 } of series('proxyctl_request_duration_seconds')) {
    const s = server(srv)
    s.duration = { sum: s.duration.sum + sum, count: s.duration.count + count }
    location(srv, loc).duration = { sum, count }
  }
  for (const { labels: [srv = '', loc = ''], value = 0 } of series('proxyctl_websocket_tunnels')) location(srv, loc).tunnels = value

  const upstreams = new Map<string, StatusDocument['upstreams'][number]>()
  const peer = (up: string, addr: string): StatusDocument['upstreams'][number]['servers'][number] => {
    let u = upstreams.get(up)
    if (u === undefined) { u = { name: up, backupInUse: false, servers: [] }; upstreams.set(up, u); doc.upstreams.push(u) }
    let p = u.servers.find((x) => x.server === addr)
    if (p === undefined) { p = { server: addr, backup: false, state: 'up', tries: {}, responseTime: { sum: 0, count: 0 }, active: 0, idle: 0 }; u.servers.push(p) }
    return p
  }
  for (const { labels: [up = '', addr = '', backup, state = 'up'], value = 0 } of series('proxyctl_upstream_server_state')) {
    const p = peer(up, addr)
    p.backup = backup === 'true'
    if (value > 0 && SEVERITY.indexOf(state) > SEVERITY.indexOf(p.state)) p.state = state
  }
  for (const { labels: [up = '', addr = '', cls = ''], value = 0 } of series('proxyctl_upstream_tries_total')) if (value > 0) peer(up, addr).tries[cls] = value
  for (const { labels: [up = '', addr = ''], sum = 0, count = 0 } of series('proxyctl_upstream_response_time_seconds')) if (count > 0) peer(up, addr).responseTime = { sum, count }
  for (const { labels: [up = '', addr = '', state], value = 0 } of series('proxyctl_upstream_connections')) {
    const p = peer(up, addr)
    if (state === 'active') p.active = value; else p.idle = value
  }
  for (const { labels: [up = ''], value = 0 } of series('proxyctl_upstream_backup_in_use')) { const u = upstreams.get(up); if (u !== undefined) u.backupInUse = value > 0 }
  for (const { labels: [, state = ''], value = 0 } of series('proxyctl_client_connections')) doc.connections[state] = (doc.connections[state] ?? 0) + value
  for (const { value = 0 } of series('proxyctl_client_received_bytes_total')) doc.bytes.received += value
  for (const { value = 0 } of series('proxyctl_client_sent_bytes_total')) doc.bytes.sent += value
  // "clientMaxBodySize", or "limitReq perip" for a zone's.
  for (const { labels: [limit = '', zone = ''], value = 0 } of series('proxyctl_limit_rejections_total')) doc.limitRejections[zone === '' ? limit : `${limit} ${zone}`] = value
  return doc
}
