/**
 * One set of failure rules for every kind of exchange: the same failing first server, through
 * proxy() (a GET), websocket() (a byte tunnel's handshake) and websocket() in message mode, gives
 * the same answer source, the same count against the server and the same log lines. The second
 * server of the group is healthy (it answers 200, or 101 to a handshake).
 */
import net from 'node:net'
import path from 'node:path'
import { proxy, websocket, type NextUpstreamCase } from 'proxyctl'
import t from 'tap'
import { freePort, poolsOf, startLogged } from '../helpers/failure.js'
import { rawUpstream } from '../helpers/raw-http.js'
import { tmpDir } from '../helpers/proxy.js'
import type { Teardown } from '../helpers/lifecycle.js'
import { converse, get, startPipelineUpstream, upgrade } from '../front-door/fixtures/pipelined-upgrade-cases.js'

type Bad = 'refused' | 'reset before head' | 'silent' | number

interface Case {
  rule: string
  bad: Bad
  on?: NextUpstreamCase[]
  /** Whether the healthy server answered (else the client got `status`). */
  retried: boolean
  status?: number
  /** Failures counted against the first server. */
  fails: number
  /** Error lines naming the first server. */
  errorLines: number
}

const cases: Case[] = [
  { rule: 'a refused connect is counted and retried', bad: 'refused', retried: true, fails: 1, errorLines: 1 },
  { rule: 'a reset before the head is counted and retried', bad: 'reset before head', retried: true, fails: 1, errorLines: 1 },
  { rule: 'a server silent past readTimeout is counted and retried', bad: 'silent', retried: true, fails: 1, errorLines: 1 },
  { rule: '502 named in nextUpstream is counted and retried', bad: 502, on: ['error', 'timeout', 'http_502'], retried: true, fails: 1, errorLines: 0 },
  { rule: '503 named in nextUpstream is counted and retried', bad: 503, on: ['error', 'timeout', 'http_503'], retried: true, fails: 1, errorLines: 0 },
  { rule: '504 named in nextUpstream is counted and retried', bad: 504, on: ['error', 'timeout', 'http_504'], retried: true, fails: 1, errorLines: 0 },
  { rule: '403 named in nextUpstream is retried but never counted', bad: 403, on: ['http_403'], retried: true, fails: 0, errorLines: 0 },
  { rule: '404 named in nextUpstream is retried but never counted', bad: 404, on: ['http_404'], retried: true, fails: 0, errorLines: 0 },
  { rule: '502 not named in nextUpstream is the answer, not a failure', bad: 502, retried: false, status: 502, fails: 0, errorLines: 0 },
  { rule: 'with nextUpstream off a refused connect is counted and answered 502', bad: 'refused', on: [], retried: false, status: 502, fails: 1, errorLines: 1 }
]

async function badServer (t: Teardown, bad: Bad): Promise<string> {
  if (bad === 'refused') return `127.0.0.1:${await freePort()}`
  const s = await rawUpstream(t, (sock: net.Socket) => {
    sock.once('data', () => {
      if (bad === 'reset before head') sock.resetAndDestroy()
      else if (typeof bad === 'number') sock.end(`HTTP/1.1 ${bad} Nope\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope`)
      // 'silent': reads and never answers
    })
  })
  return s.address
}

const kinds = [
  { kind: 'proxy()', handler: (on: Case['on']) => proxy('http://app', { readTimeout: 300, ...(on ? { nextUpstream: { on } } : {}) }), request: get('/x'), ok: '200 plain GET /x host=app upgrade=-' },
  { kind: 'websocket()', handler: (on: Case['on']) => websocket('http://app', { readTimeout: 300, ...(on ? { nextUpstream: { on } } : {}) }), request: upgrade('/x'), ok: '101' },
  { kind: 'websocket() messages', handler: (on: Case['on']) => websocket('http://app', { readTimeout: 300, messages: true, ...(on ? { nextUpstream: { on } } : {}) }), request: upgrade('/x'), ok: '101' }
]

for (const c of cases) {
  t.test(c.rule, async (t) => {
    const good = path.join(tmpDir(t), 'good.sock')
    await startPipelineUpstream(t, good)
    for (const k of kinds) {
      const bad = await badServer(t, c.bad)
      const p = await startLogged(t, {
        upstreams: { app: { servers: [bad, `unix:${good}`] } },
        servers: [{ listen: '127.0.0.1:0', locations: { '/': k.handler(c.on) } }]
      })
      const answers = await converse(p.port, [k.request])
      const first = answers[0] ?? ''
      if (c.retried) t.equal(first, k.ok, `${k.kind}: the healthy server answered`)
      else t.match(first, new RegExp(`^${c.status ?? 0}\\b`), `${k.kind}: the client got ${c.status ?? 0}`)
      const peer = poolsOf(p.proxy)[0]?.peers.find((x) => x.address === bad)
      t.equal(peer?.fails, c.fails, `${k.kind}: ${c.fails} failure(s) counted against the first server`)
      t.equal(p.errors().filter((l) => l.server === bad).length, c.errorLines, `${k.kind}: ${c.errorLines} error line(s) naming it`)
      t.same(p.lines.filter((l) => (l.level === 'error' || l.level === 'warn') && typeof l.code !== 'string'), [], `${k.kind}: every error and warn line carries a code`)
    }
  })
}
