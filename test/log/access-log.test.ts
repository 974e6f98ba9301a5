/**
 * The access log through real servers: the nginx-checked table (fixtures/access-log-cases.ts)
 * line by line, then the keys' behaviour: `false` and its inheritance, the json format, a
 * template with variables, SIGUSR1 reopening a renamed file, a tunnel's line at its close.
 */
import fs from 'node:fs'
import http2 from 'node:http2'
import path from 'node:path'
import { test } from 'tap'
import { respond } from '@proxyctl/core'
import { proxy } from '@proxyctl/plugins'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { accessLogCases, asNginxLine, buildTree, logLines, maskLine, playCase, proxyctlConfig, startApp, startWs, upstreamSince, type Where } from './fixtures/access-log-cases.js'

test('access log lines, as nginx writes them (checked against nginx by access-log-nginx-compare.ts)', async (t) => {
  const dir = tmpDir(t)
  const w: Where = { sock: path.join(dir, 'app.sock'), ws: path.join(dir, 'ws.sock'), dead: path.join(dir, 'dead.sock'), root: path.join(dir, 'www'), log: path.join(dir, 'access.log') }
  buildTree(w.root)
  const app = await startApp(t, w.sock)
  await startWs(t, w.ws)
  const running = await startConfig(t, proxyctlConfig(w, '127.0.0.1:0'))
  const port = running.listeners[0]?.port as number
  let seen = 0
  for (const c of accessLogCases) {
    const from = app.seen.length
    const answer = await playCase({ port }, c)
    const lines = await logLines(w.log, seen + 1)
    seen = lines.length
    t.equal(asNginxLine(c, maskLine(lines[lines.length - 1] ?? '')), c.line, `${c.name}: the log line`)
    t.same(answer, c.answer, `${c.name}: the whole answer`)
    t.same(upstreamSince(app, from), c.upstream, `${c.name}: what the upstream received`)
  }
})

/** Sends GETs to each path in turn, then returns the log's lines once `count` are there. */
async function getAll (base: string, paths: string[], file: string, count = paths.length): Promise<string[]> {
  for (const p of paths) await (await fetch(base + p)).text()
  return await logLines(file, count)
}

test('accessLog: a level sets its own, false turns it off there and below, inherited as nginx', async (t) => {
  const dir = tmpDir(t)
  const top = path.join(dir, 'top.log')
  const loc = path.join(dir, 'loc.log')
  const running = await startConfig(t, {
    accessLog: top,
    logFormats: { uri: '$request_uri' },
    servers: [{
      listen: '127.0.0.1:0',
      locations: {
        '/inherits': respond(200, 'a'),
        '/off/': { accessLog: false, handler: respond(200, 'b'), locations: { '/off/nested': respond(200, 'c'), '/off/on': { accessLog: { path: loc, format: 'uri' }, handler: respond(200, 'd') } } },
        '/own': { accessLog: { path: loc, format: 'uri' }, handler: respond(200, 'e') }
      }
    }, {
      listen: '127.0.0.2:0',
      accessLog: false,
      locations: { '/': respond(200, 'f') }
    }]
  })
  const [one, two] = running.listeners.map((l) => l.url) as [string, string]
  await getAll(one, ['/inherits', '/off/x', '/off/nested', '/off/on', '/own'], top, 0)
  await getAll(two, ['/anything'], top, 0)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const rows: Array<[string, string, string[]]> = [
    ['the top level\'s log, for a location that sets nothing (only)', top, ['/inherits']],
    ['a location\'s own log, with its own format; false above it does not reach it', loc, ['/off/on', '/own']]
  ]
  for (const [name, file, uris] of rows) {
    const lines = await logLines(file, uris.length)
    t.same(lines.map((l) => l.includes('"GET ') ? (/"GET (\S+)/.exec(l)?.[1] ?? l) : l), uris, name)
  }
})

test('accessLog format json: one JSON object per line, nginx\'s escape=json', async (t) => {
  const dir = tmpDir(t)
  const file = path.join(dir, 'json.log')
  const running = await startConfig(t, { accessLog: { path: file, format: 'json' }, servers: [{ listen: '127.0.0.1:0', locations: { '/': respond(201, 'made') } }] })
  await (await fetch(`${running.listeners[0]?.url ?? ''}/x?a="b"`, { headers: { 'user-agent': 'ua "quoted"\ttab' } })).text()
  const [line] = await logLines(file, 1)
  const o = JSON.parse(line ?? '{}') as Record<string, unknown>
  const rows: Array<[string, unknown, unknown]> = [
    ['status is a number', o.status, 201],
    ['body_bytes_sent is a number', o.body_bytes_sent, 4],
    ['request with its quotes as JSON escapes them', o.request, 'GET /x?a=%22b%22 HTTP/1.1'],
    ['a header with " and a tab survives', o.http_user_agent, 'ua "quoted"\ttab'],
    ['no upstream: an empty string, not "-"', o.upstream_addr, ''],
    ['request_time in seconds with ms', typeof o.request_time, 'number'],
    ['time in ISO 8601 with its offset', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/.test(String(o.time)), true]
  ]
  for (const [name, got, want] of rows) t.same(got, want, name)
})

test('a template of variables, named in logFormats or inline', async (t) => {
  const dir = tmpDir(t)
  const file = path.join(dir, 'tpl.log')
  const up = await import('../helpers/upstream.js').then((m) => m.startUpstream(t, 'app', { port: 0 }))
  const running = await startConfig(t, {
    logFormats: { mine: '$status $bytes_sent>$body_bytes_sent $request_length $connection_requests $host $uri $upstream_addr $upstream_status $msec $ssl_protocol' },
    servers: [{
      listen: '127.0.0.1:0',
      locations: {
        '/named/': { accessLog: { path: file, format: 'mine' }, handler: proxy(`http://${up.address}`) },
        '/inline': { accessLog: { path: file, format: 'inline $request_method "$http_x_thing" $server_name' }, handler: respond(204) }
      }
    }]
  })
  const base = running.listeners[0]?.url ?? ''
  await (await fetch(`${base}/named/a`)).text()
  await (await fetch(`${base}/inline`, { headers: { 'x-thing': 'v"1' } })).text()
  const lines = await logLines(file, 2)
  const named = (lines[0] ?? '').split(' ')
  const rows: Array<[string, unknown, unknown]> = [
    ['$status', named[0], '200'],
    ['$bytes_sent is the head and the body, more than $body_bytes_sent', Number(named[1]?.split('>')[0]) > Number(named[1]?.split('>')[1]), true],
    ['$request_length counts the head', Number(named[2]) > 20, true],
    ['$connection_requests: the first on its connection (fetch may reuse: at least 1)', Number(named[3]) >= 1, true],
    ['$host', named[4], '127.0.0.1'],
    ['$uri', named[5], '/named/a'],
    ['$upstream_addr', named[6], up.address],
    ['$upstream_status', named[7], '200'],
    ['$msec: seconds with ms', /^\d+\.\d{3}$/.test(named[8] ?? ''), true],
    ['$ssl_protocol without TLS: -', named[9], '-'],
    ['an inline template with a header (escaped) and $server_name (empty, as nginx prints an empty value)', lines[1], 'inline GET "v\\x221" ']
  ]
  for (const [name, got, want] of rows) t.same(got, want, name)
})

test('SIGUSR1 reopens the log files: after a rename, new lines go to a new file at the path', async (t) => {
  const dir = tmpDir(t)
  const file = path.join(dir, 'access.log')
  const running = await startConfig(t, { accessLog: { path: file, format: '$request_uri' }, servers: [{ listen: '127.0.0.1:0', locations: { '/': respond(200, 'x') } }] })
  const base = running.listeners[0]?.url ?? ''
  await getAll(base, ['/before'], file)
  fs.renameSync(file, `${file}.1`)
  await getAll(base, ['/renamed'], `${file}.1`, 2)
  process.kill(process.pid, 'SIGUSR1')
  for (let i = 0; i < 100 && !fs.existsSync(file); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  await getAll(base, ['/after'], file)
  const rows: Array<[string, string[], string[]]> = [
    ['the rotated file keeps what came before the signal', await logLines(`${file}.1`, 2), ['/before', '/renamed']],
    ['the new file at the path gets what came after', await logLines(file, 1), ['/after']]
  ]
  for (const [name, got, want] of rows) t.same(got, want, name)
})

test('a WebSocket tunnel is logged once, when it closes, with 101 and its bytes', async (t) => {
  const dir = tmpDir(t)
  const file = path.join(dir, 'ws.log')
  const sock = path.join(dir, 'ws.sock')
  await startWs(t, sock)
  const { websocket } = await import('@proxyctl/plugins')
  const running = await startConfig(t, { accessLog: { path: file, format: '$status $body_bytes_sent $upstream_status' }, servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket(`http://unix:${sock}`) } }] })
  const port = running.listeners[0]?.port as number
  const started = Date.now()
  await playCase({ port }, accessLogCases.find((c) => c.request.startsWith('GET /ws/')) as (typeof accessLogCases)[number])
  const lines = await logLines(file, 1)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(await logLines(file, 1), ['101 5 101'], 'one line: 101, the five bytes the upstream sent, the upstream\'s 101')
  t.ok(lines.length === 1 && Date.now() - started >= 50, 'written after the tunnel closed (the upstream closes it after 50 ms)')
})

test('over HTTP/2 (h2c) an access line names the client and counts its stream\'s body, as over HTTP/1.1', async (t) => {
  const dir = tmpDir(t)
  const file = path.join(dir, 'h2.log')
  const running = await startConfig(t, {
    accessLog: { path: file, format: 'json' },
    servers: [{ listen: { address: '127.0.0.1:0', http2: true }, locations: { '/': respond(200, 'twelve bytes') } }]
  })
  const url = running.listeners[0]?.url ?? ''
  await (await fetch(`${url}/h1`)).text()
  const session = http2.connect(url)
  t.teardown(() => { session.close() })
  await new Promise<void>((resolve, reject) => {
    const s = session.request({ ':path': '/h2' })
    s.on('data', () => {})
    s.on('end', resolve)
    s.on('error', reject)
  })
  const [h1, h2] = (await logLines(file, 2)).map((l) => JSON.parse(l) as Record<string, unknown>)
  const rows: Array<[string, unknown, unknown]> = [
    ['HTTP/1.1: the client\'s address', h1?.remote_addr, '127.0.0.1'],
    ['HTTP/1.1: body_bytes_sent', h1?.body_bytes_sent, 12],
    ['h2: the request line says HTTP/2.0', h2?.request, 'GET /h2 HTTP/2.0'],
    ['h2: the client\'s address, as over HTTP/1.1', h2?.remote_addr, '127.0.0.1'],
    ['h2: body_bytes_sent is the stream\'s body', h2?.body_bytes_sent, 12]
  ]
  for (const [name, got, want] of rows) t.same(got, want, name)
})
