/**
 * What fails while handling one request ends that request or connection, never the process:
 * the client gets an answer (or a closed connection), the log gets one line with a stable code,
 * the client address and the request line, and the next connection is served.
 */
import path from 'node:path'
import { defineHandler } from '@proxyctl/core'
import { addPhaseHook, proxy, respond, websocket, type FastifyInstance } from 'proxyctl'
import t from 'tap'
import type { LogLine } from '../helpers/log.js'
import { startLogged } from '../helpers/failure.js'
import { tmpDir } from '../helpers/proxy.js'
import { clientFrame, converse, get, startPipelineUpstream, upgrade } from './fixtures/pipelined-upgrade-cases.js'

/** A handler whose every path throws, as a buggy plugin's would. */
const throwing = defineHandler('throws', () => ({
  handle () { throw new Error('handler bug') },
  direct () { throw new Error('fast path bug') }
}))

/** A plugin whose phase hook throws, as a buggy one's would. */
const throwIn = (phase: 'upstreamRequest' | 'upstreamResponse') => (f: FastifyInstance): void => {
  addPhaseHook(f, phase, () => { throw new Error(`${phase} hook bug`) })
}

interface Case {
  rule: string
  parts: Array<string | Buffer>
  answers: string[]
  log: Partial<LogLine> | undefined
}

const cases: Case[] = [
  {
    rule: 'a handler that throws on the fast path: 500, connection closed, an error line naming code, client and request',
    parts: [get('/boom?x=1')],
    answers: ['500', '  head: connection: close, content-length: *, content-type: text/html, date: *', 'closed'],
    log: { level: 'error', code: 'PROXYCTL_INTERNAL_ERROR', client: '127.0.0.1', request: 'GET /boom?x=1 HTTP/1.1' }
  },
  {
    rule: 'a request behind the one that failed on the same connection is not answered (the connection is closed)',
    parts: [get('/boom') + get('/ok')],
    answers: ['500', '  head: connection: close, content-length: *, content-type: text/html, date: *', 'closed'],
    log: { level: 'error', code: 'PROXYCTL_INTERNAL_ERROR', request: 'GET /boom HTTP/1.1' }
  },
  {
    rule: 'bytes the parser refuses: 400, connection closed, an info line naming code and client',
    parts: ['GET / HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n'],
    answers: ['400', '  head: connection: close, content-length: *, content-type: text/html, date: *', 'closed'],
    log: { level: 'info', code: 'PROXYCTL_BAD_REQUEST', client: '127.0.0.1', status: 400 }
  },
  {
    rule: 'bad bytes pipelined behind a good request: the good one is answered first, then 400',
    parts: [get('/ok') + '\x16\x03\x01 not http\r\n\r\n'],
    answers: ['200 ok', '  head: connection: keep-alive, content-length: 2, content-type: application/octet-stream, date: *', '400', '  head: connection: close, content-length: *, content-type: text/html, date: *', 'closed'],
    log: { level: 'info', code: 'PROXYCTL_BAD_REQUEST', status: 400 }
  },
  {
    rule: 'an Upgrade that announces a body is refused with 400 and closed (Node hands it over without its body)',
    parts: [upgrade('/ok').replace('\r\n\r\n', '\r\nContent-Length: 5\r\n\r\nhello')],
    answers: ['400', '  head: connection: close, content-length: *, content-type: text/html, date: *', 'closed'],
    log: { level: 'info', reason: 'client sent an Upgrade request with a body' }
  },
  {
    rule: 'an upstreamRequest hook that throws: 500, connection closed, an error line',
    parts: [get('/reqhook/x')],
    answers: ['500', '  head: connection: close, content-length: *, content-type: text/html, date: *', 'closed'],
    log: { level: 'error', code: 'PROXYCTL_INTERNAL_ERROR', client: '127.0.0.1', request: 'GET /reqhook/x HTTP/1.1' }
  },
  {
    rule: 'an upstreamResponse hook that throws: 500, connection closed, an error line',
    parts: [get('/resphook/x')],
    answers: ['500', '  head: connection: close, content-length: *, content-type: text/html, date: *', 'closed'],
    log: { level: 'error', code: 'PROXYCTL_INTERNAL_ERROR', client: '127.0.0.1', request: 'GET /resphook/x HTTP/1.1' }
  },
  {
    rule: 'an upstreamResponse hook that throws on a WebSocket 101: the connection is cut, an error line',
    parts: [upgrade('/wshook')],
    answers: ['closed'],
    log: { level: 'error', code: 'PROXYCTL_INTERNAL_ERROR', client: '127.0.0.1', request: 'GET /wshook HTTP/1.1' }
  },
  {
    rule: 'a message hook that throws (message mode): the relay ends, the client connection is cut, an error line',
    parts: [upgrade('/wsmsg'), clientFrame('hi')],
    answers: ['101', '  head: connection: upgrade, date: *, sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=, upgrade: websocket', 'closed'],
    log: { level: 'error', code: 'PROXYCTL_INTERNAL_ERROR', client: '127.0.0.1', request: 'GET /wsmsg HTTP/1.1' }
  },
  {
    rule: 'an Upgrade to a location that throws: 500 after the request before it, connection closed',
    parts: [get('/ok') + upgrade('/boom')],
    answers: ['200 ok', '  head: connection: keep-alive, content-length: 2, content-type: application/octet-stream, date: *', '500', '  head: connection: close, content-length: *, content-type: text/html, date: *', 'closed'],
    log: { level: 'error', code: 'PROXYCTL_INTERNAL_ERROR', request: 'GET /boom HTTP/1.1' }
  }
]

t.test('failures while handling a request', async (t) => {
  const app = path.join(tmpDir(t), 'app.sock')
  await startPipelineUpstream(t, app)
  const { proxy: running, lines } = await startLogged(t, {
    servers: [{
      listen: '127.0.0.1:0',
      locations: {
        '/boom': throwing,
        '/ok': respond(200, 'ok'),
        '/reqhook/': { plugins: [throwIn('upstreamRequest')], handler: proxy(`http://unix:${app}:`) },
        '/resphook/': { plugins: [throwIn('upstreamResponse')], handler: proxy(`http://unix:${app}:`) },
        '/wshook': { plugins: [throwIn('upstreamResponse')], handler: websocket(`http://unix:${app}:`) },
        '/wsmsg': websocket(`http://unix:${app}:`, { messages: () => { throw new Error('message hook bug') } })
      }
    }]
  })
  const port = running.listeners[0]?.port as number

  for (const c of cases) {
    const before = lines.length
    t.same(await converse(port, c.parts), c.answers, c.rule)
    const logged = lines.slice(before).filter((l) => l.level === 'error' || l.code !== undefined)
    if (c.log !== undefined) t.hasStrict(logged, [c.log], `${c.rule}: logged`)
  }
  t.same(await converse(port, [get('/ok')]), ['200 ok', '  head: connection: keep-alive, content-length: 2, content-type: application/octet-stream, date: *', 'open'], 'a fresh connection is served afterwards')
})
