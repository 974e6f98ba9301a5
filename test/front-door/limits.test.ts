/**
 * The front door's limits and protocol answers (fixtures/limits-cases.ts) through a real proxyctl
 * in front of a real upstream on a unix socket: every answer, when the connection closes, and
 * what reached the upstream. fixtures/limits-nginx-compare.ts runs the same table against nginx.
 */
import path from 'node:path'
import t from 'tap'
import { proxy } from 'proxyctl'
import { captureLogger, freePort } from '../helpers/failure.js'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { limitCases, playLimitCase, startLimitsUpstream, type Server } from './fixtures/limits-cases.js'

t.test('connection limits and protocol answers, as nginx', async (t) => {
  const dir = tmpDir(t)
  const sock = path.join(dir, 'app.sock')
  const up = await startLimitsUpstream(t, sock)
  // A named upstream, as the nginx config's `upstream app`: the upstream gets Host: app.
  const app = 'http://app'
  const ports: Record<Server, number> = { defaults: await freePort(), tight: await freePort() }
  const { logger, lines } = captureLogger()
  await startConfig(t, {
    upstreams: { app: { servers: [`unix:${sock}`] } },
    servers: [
      { listen: `127.0.0.1:${ports.defaults}`, locations: { '/': proxy(app) } },
      {
        listen: `127.0.0.1:${ports.tight}`,
        clientHeaderTimeout: 1000,
        keepaliveTimeout: 2000,
        keepaliveRequests: 3,
        sendTimeout: 1000,
        largeClientHeaderBuffers: '2 1k',
        locations: { '/': proxy(app), '/ka0': { keepaliveTimeout: 0, handler: proxy(app) } }
      }
    ]
  }, logger)
  // Cases run two at a time: the timed ones wait seconds each.
  const queue = [...limitCases]
  const results = new Map<string, unknown>()
  await Promise.all([0, 1].map(async () => {
    for (let c = queue.shift(); c !== undefined; c = queue.shift()) {
      const got = await playLimitCase(ports[c.server], c)
      results.set(c.name, got)
    }
  }))
  for (const c of limitCases) t.same(results.get(c.name), { answers: c.expected.answers, closed: c.expected.closed }, c.name)

  // Each limit hit is an info line naming the client and the limit.
  const logged = [
    { rule: 'a head too slow', line: { code: 'PROXYCTL_CLIENT_TIMEOUT', limit: 'clientHeaderTimeout', clientHeaderTimeout: 1000 } },
    { rule: 'an answer left unread', line: { code: 'PROXYCTL_CLIENT_TIMEOUT', limit: 'sendTimeout', sendTimeout: 1000 } },
    { rule: 'a header line too long', line: { code: 'PROXYCTL_BAD_REQUEST', limit: 'largeClientHeaderBuffers', reason: 'client sent too long header line' } },
    { rule: 'a URI too long', line: { code: 'PROXYCTL_BAD_REQUEST', limit: 'largeClientHeaderBuffers', reason: 'client sent too long URI' } },
    { rule: 'too many header lines', line: { code: 'PROXYCTL_BAD_REQUEST', limit: 'maxHeaders', reason: 'client sent too many header lines' } },
    { rule: 'a head over every buffer', line: { code: 'PROXYCTL_BAD_REQUEST', limit: 'largeClientHeaderBuffers', parserCode: 'HPE_HEADER_OVERFLOW' } },
    { rule: 'a TRACE', line: { code: 'PROXYCTL_BAD_REQUEST', reason: 'client sent TRACE method', request: 'TRACE /t HTTP/1.1' } }
  ]
  for (const l of logged) {
    const want = { level: 'info', client: '127.0.0.1', ...l.line }
    t.ok(lines.some((line) => Object.entries(want).every(([k, v]) => line[k] === v)), `${l.rule}: an info line with ${JSON.stringify(l.line)}`)
  }

  // What reached the upstream, one case at a time (run alone, so the upstream's record is the case's).
  for (const c of limitCases.filter((c) => c.closeWithin === undefined)) {
    up.reset()
    await playLimitCase(ports[c.server], c)
    t.same(up.seen, c.expected.upstream, `${c.name}: the upstream received ${c.expected.upstream.length === 0 ? 'nothing' : c.expected.upstream.filter((l) => l.startsWith('upstream ')).join(', ')}, whole`)
    t.ok(up.maxInFlight <= 1, `${c.name}: at most one request of the connection at the upstream at a time (${up.maxInFlight})`)
  }
})
