/**
 * Request bodies at the front door, as nginx reads them: clientMaxBodySize for every location
 * (413 before anything goes upstream, Expect: 100-continue answered without a 100), a body that
 * stalls past clientBodyTimeout (the connection closed, the upstream request aborted), request
 * buffering (nothing upstream before the body is complete, then Content-Length; a temp file past
 * clientBodyBufferSize, removed after each case) and nextUpstream's non_idempotent. The table,
 * fixtures/request-body-cases.ts, was checked against nginx 1.22.1 with
 * fixtures/body-nginx-compare.ts.
 */
import fs from 'node:fs'
import path from 'node:path'
import { proxy, respond, serveStatic } from 'proxyctl'
import t from 'tap'
import { startLogged } from '../helpers/failure.js'
import { waitFor } from '../helpers/lifecycle.js'
import { tmpDir } from '../helpers/proxy.js'
import { send } from '../helpers/raw-http.js'
import { bodyCases, converseBody, converseWhole, startBodyUpstreams, writeStaticRoot } from './fixtures/request-body-cases.js'

/**
 * Temp files under `dir`: those on disk, and those this process still holds open (a temp file is
 * unlinked as soon as it is open, so only its descriptor shows it: `/proc/self/fd`).
 */
function tempFiles (dir: string): string[] {
  const open: string[] = []
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`)
      if (target.startsWith(dir)) open.push(`open: ${target}`)
    } catch {}
  }
  return [...fs.readdirSync(dir), ...open]
}

t.test('request bodies', async (t) => {
  const dir = tmpDir(t)
  const app = path.join(dir, 'app.sock')
  const fail = path.join(dir, 'fail.sock')
  const temp = path.join(dir, 'temp')
  fs.mkdirSync(temp)
  writeStaticRoot(dir)
  await startBodyUpstreams(t, app, fail)
  const { port, lines } = await startLogged(t, {
    tempPath: temp,
    upstreams: {
      app: { servers: [`unix:${app}`] },
      pair: { servers: [{ address: `unix:${fail}`, maxFails: 0 }, { address: `unix:${app}`, backup: true }] }
    },
    servers: [{
      listen: '127.0.0.1:0',
      clientMaxBodySize: 100,
      // The compare config sets no default_type: nginx's built-in text/plain.
      defaultType: 'text/plain',
      clientBodyTimeout: 500,
      locations: {
        '/': proxy('http://app'),
        '/nolimit/': { clientMaxBodySize: 0, handler: proxy('http://app') },
        '/override/': { clientMaxBodySize: '1k', handler: proxy('http://app') },
        '/file/': { clientMaxBodySize: 0, clientBodyBufferSize: '1k', handler: proxy('http://app') },
        '/stream/': proxy('http://app', { requestBuffering: false }),
        '/static/': { root: dir, handler: serveStatic() },
        '= /return': respond(200, 'ok'),
        '/paged/': { clientMaxBodySize: 10, errorPages: { 413: '/return' }, handler: proxy('http://app') },
        '/retry/': proxy('http://pair'),
        '/retry-np/': proxy('http://pair', { nextUpstream: { on: ['error', 'timeout', 'non_idempotent'] } })
      }
    }]
  })

  for (const c of bodyCases) {
    t.same(await converseWhole(port, c.parts), c.expected, c.name)
    t.same(tempFiles(temp), [], `${c.name}: no temp file left, none held open`)
  }

  const first = (code: string): unknown => lines.find((l) => l.code === code)
  t.match(first('PROXYCTL_BODY_TOO_LARGE'), {
    level: 'info', client: '127.0.0.1', request: 'POST /a HTTP/1.1', limit: 'clientMaxBodySize', clientMaxBodySize: 100, msg: /client intended to send too large body: 101 bytes/
  }, 'a refusal is one info line: code, client, request line, the limit')
  t.match(first('PROXYCTL_CLIENT_TIMEOUT'), {
    level: 'info', client: '127.0.0.1', request: 'POST /a HTTP/1.1', limit: 'clientBodyTimeout', clientBodyTimeout: 500, msg: /client timed out while reading client request body/
  }, 'a stalled body is one info line: code, client, request line, the limit')
  t.equal(lines.filter((l) => l.level === 'error' && l.code !== 'PROXYCTL_UPSTREAM_RESET' && l.code !== 'PROXYCTL_UPSTREAM_BAD_RESPONSE').length, 0, 'no other error line')
})

t.test('a temp file that cannot be written, a client that leaves mid-body', async (t) => {
  const dir = tmpDir(t)
  const app = path.join(dir, 'app.sock')
  const temp = path.join(dir, 'temp')
  fs.mkdirSync(temp)
  await startBodyUpstreams(t, app, path.join(dir, 'fail.sock'))
  const { port, lines } = await startLogged(t, {
    tempPath: temp,
    servers: [{
      listen: '127.0.0.1:0',
      clientBodyBufferSize: 16,
      locations: {
        '/': proxy(`http://unix:${app}:`),
        '/nowhere/': { handler: proxy(`http://unix:${app}:`) }
      }
    }]
  })
  const cases: Array<{ rule: string, parts: string[], expected: string[], setup?: () => void }> = [
    {
      rule: 'a body past clientBodyBufferSize with tempPath gone: 500, the connection closed, nothing upstream',
      setup: () => { fs.rmSync(temp, { recursive: true }) },
      parts: [`POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n${'x'.repeat(20)}`, 'x'.repeat(20)],
      expected: ['500 page', '  head: connection: close, content-length: *, content-type: text/html, date: *', 'closed', 'upstream: nothing']
    },
    {
      rule: 'a body within clientBodyBufferSize needs no temp file: proxied',
      parts: ['POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789'],
      expected: ['200 POST /a length=10 body=10', '  head: connection: keep-alive, content-length: 25, date: *', 'open', 'upstream app: POST /a length=10 body=10']
    }
  ]
  for (const c of cases) {
    c.setup?.()
    t.same(await converseBody(port, c.parts), c.expected, c.rule)
  }
  t.match(lines.find((l) => l.code === 'PROXYCTL_BODY_BUFFER_FAILED'), { level: 'error', client: '127.0.0.1', request: 'POST /a HTTP/1.1', limit: 'tempPath', msg: /could not buffer the client request body in a temp file/ },
    'one error line: code, client, request line, what failed')

  fs.mkdirSync(temp)
  const left = await send({ port }, [`POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(100)}`], { ms: 300 })
  t.equal(left.raw, '', 'a client that leaves mid-body gets nothing')
  t.ok(await waitFor(() => tempFiles(temp).length === 0, 2000), 'its temp file is closed and gone')
  t.same(await converseBody(port, ['GET /a HTTP/1.1\r\nHost: x\r\n\r\n']), ['200 GET /a length=- body=0', '  head: connection: keep-alive, content-length: 22, date: *', 'open', 'upstream app: GET /a length=- body=0'], 'the next request is served')
})
