// Response compression (README, "Compression"): the table of compress-cases.ts played against
// proxyctl (compared whole with nginx by fixtures/compress-nginx-compare.ts), brotli round trips,
// streaming with backpressure, HTTP/2, and the config's shape.
import http from 'node:http'
import http2 from 'node:http2'
import path from 'node:path'
import zlib from 'node:zlib'
import t from 'tap'
import { resolveConfig } from '@proxyctl/core'
import { chooseCoding } from '@proxyctl/core/internal'
import { proxy, serveStatic } from '@proxyctl/plugins'
import { respond } from '@proxyctl/core'
import { freePort } from '../helpers/failure.js'
import type { Teardown } from '../helpers/lifecycle.js'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { cases, files, play, proxyctlServer, scenarios, text, upstreamAnswers, upstreamHandler, writeFiles, type Case } from './fixtures/compress-cases.js'

async function upstream (t: Teardown, sock: string, handler: http.RequestListener = upstreamHandler): Promise<void> {
  const server = http.createServer(handler)
  await new Promise<void>((resolve) => server.listen(sock, resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
}

/** The table's files and upstream, and a free port for proxyctl. */
async function tableUpstream (t: Teardown): Promise<{ sock: string, root: string, port: number }> {
  const dir = tmpDir(t)
  const sock = path.join(dir, 'up.sock')
  const root = path.join(dir, 'files')
  writeFiles(root)
  await upstream(t, sock)
  return { sock, root, port: await freePort() }
}

/** What the case's answer decodes to: the body before compression (an upstream's gzip answer: decoded once). */
function original (c: Case): Buffer | undefined {
  if (c.target === '/up/encoded') return zlib.gunzipSync(upstreamAnswers.encoded?.body as Buffer)
  if (c.target.startsWith('/up/')) { const b = upstreamAnswers[c.target.slice(4)]?.body; return b === undefined ? undefined : Buffer.from(b) }
  if (c.target.startsWith('/files/')) { const b = files[c.target.slice(7)]; return b === undefined ? undefined : Buffer.from(b) }
  if (c.target.startsWith('/ret/')) return Buffer.from(text(200))
  return undefined
}

t.test('the compression table against proxyctl (whole answers compared with nginx by compress-nginx-compare.ts)', async (t) => {
  const { sock, root, port } = await tableUpstream(t)
  await startConfig(t, { servers: scenarios.map((sc) => proxyctlServer(sc, port, sock, root)) })
  for (const c of cases) {
    const got = await play(port, c)
    t.equal(got.encoding, c.encoding, `${c.host} ${c.method ?? 'GET'} ${c.target}: ${c.name}`)
    t.equal(got.vary, c.vary === true, `${c.name}: Vary: Accept-Encoding ${c.vary === true ? 'added' : 'not added'}`)
    const want = original(c)
    // Decoded once it is the original: compressed once, never twice.
    if (want !== undefined && (c.method ?? 'GET') === 'GET' && c.encoding !== undefined) {
      t.ok(got.body.equals(want), `${c.name}: the body decodes to the original`)
    }
  }
})

const brotliCases: Array<{ name: string, accept: string, encodings: Array<'br' | 'gzip'>, want: string | undefined }> = [
  { name: 'br preferred by the config: br when both are accepted alike', accept: 'gzip, br', encodings: ['br', 'gzip'], want: 'br' },
  { name: 'gzip preferred by the config: gzip when both are accepted alike', accept: 'br, gzip', encodings: ['gzip', 'br'], want: 'gzip' },
  { name: "the client's higher q wins over the config's order", accept: 'br;q=0.5, gzip', encodings: ['br', 'gzip'], want: 'gzip' },
  { name: 'br;q=0 refuses br', accept: 'br;q=0, gzip;q=0.1', encodings: ['br', 'gzip'], want: 'gzip' },
  { name: 'br only offered, gzip only accepted: as is', accept: 'gzip', encodings: ['br'], want: undefined },
  { name: 'identity;q=0 with nothing offered acceptable: as is (nginx sends it as is, no 406)', accept: 'identity;q=0, deflate', encodings: ['br', 'gzip'], want: undefined },
  { name: 'a malformed q counts as refused, as nginx', accept: 'br;q=x', encodings: ['br'], want: undefined },
  { name: 'BR in capitals', accept: 'BR', encodings: ['br'], want: 'br' }
]

t.test('Accept-Encoding negotiation (q-values, the config order breaking ties)', async (t) => {
  for (const c of brotliCases) t.equal(chooseCoding(c.accept, c.encodings), c.want, c.name)
})

t.test('brotli round trips: proxied, static and respond() answers', async (t) => {
  const { sock, root, port } = await tableUpstream(t)
  await startConfig(t, {
    servers: [{
      listen: [`127.0.0.1:${port}`],
      compress: { encodings: ['br', 'gzip'], types: ['application/json', 'text/css'], level: 6 },
      locations: {
        '/up/': proxy(`http://unix:${sock}`),
        '/files/': { alias: `${root}/`, handler: serveStatic() },
        '/ret/': respond(200, text(200))
      }
    }]
  })
  const table: Array<{ name: string, target: string, want: Buffer }> = [
    { name: 'a proxied text/html answer', target: '/up/html', want: Buffer.from(upstreamAnswers.html?.body as string) },
    { name: 'a proxied chunked answer', target: '/up/chunked', want: Buffer.from(upstreamAnswers.chunked?.body as string) },
    { name: 'a proxied JSON answer', target: '/up/json', want: Buffer.from(upstreamAnswers.json?.body as string) },
    { name: 'a static CSS file', target: '/files/style.css', want: Buffer.from(files['style.css'] as string) },
    { name: 'a respond() answer', target: '/ret/a.html', want: Buffer.from(text(200)) }
  ]
  for (const c of table) {
    const got = await play(port, { name: c.name, host: 'x', target: c.target, headers: { 'Accept-Encoding': 'gzip, br' } })
    t.equal(got.encoding, 'br', `${c.name}: Content-Encoding br`)
    t.ok(got.body.equals(c.want), `${c.name}: decodes to the original (${c.want.length} bytes)`)
    t.notOk(got.lines.some((l) => l.startsWith('  content-length:')), `${c.name}: no Content-Length`)
  }
})

t.test('streaming: a 4 MiB proxied answer to a slow reader goes through zlib with backpressure, whole', async (t) => {
  const dir = tmpDir(t)
  const sock = path.join(dir, 'up.sock')
  const big = Buffer.from(Array.from({ length: 4 * 1024 * 1024 / 64 }, (_, i) => `${String(i).padStart(10, '0')} ${'x'.repeat(52)}\n`).join(''))
  let upstreamDone = 0
  await upstream(t, sock, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': String(big.length) })
    let at = 0
    const more = (): void => {
      while (at < big.length) {
        const piece = big.subarray(at, at + 65536)
        at += piece.length
        if (!res.write(piece)) { res.once('drain', more); return }
      }
      res.end(() => { upstreamDone = Date.now() })
    }
    more()
  })
  const port = await freePort()
  await startConfig(t, { servers: [{ listen: [`127.0.0.1:${port}`], compress: { encodings: ['gzip'], level: 1 }, locations: { '/': proxy(`http://unix:${sock}`) } }] })
  const body = await new Promise<{ data: Buffer, encoding: string | undefined }>((resolve, reject) => {
    http.get({ port, path: '/big', headers: { 'accept-encoding': 'gzip' } }, (res) => {
      const parts: Buffer[] = []
      res.pause()
      // A reader that takes what is there every 2 ms: the socket fills between reads.
      const timer = setInterval(() => { const c = res.read() as Buffer | null; if (c !== null) parts.push(c) }, 2)
      res.on('end', () => { clearInterval(timer); resolve({ data: Buffer.concat(parts), encoding: res.headers['content-encoding'] }) })
      res.on('error', reject)
    }).on('error', reject)
  })
  t.equal(body.encoding, 'gzip', 'gzipped')
  t.ok(zlib.gunzipSync(body.data).equals(big), `decodes to the upstream's ${big.length} bytes`)
  t.ok(upstreamDone > 0, 'the upstream finished sending')
})

t.test('HTTP/2 (h2c): proxied, static and respond() answers compressed as over HTTP/1.1', async (t) => {
  const { sock, root, port } = await tableUpstream(t)
  await startConfig(t, {
    servers: [{
      listen: [{ address: `127.0.0.1:${port}`, http2: true }],
      compress: { encodings: ['br', 'gzip'] },
      locations: { '/up/': proxy(`http://unix:${sock}`), '/files/': { alias: `${root}/`, handler: serveStatic() }, '/ret/': respond(200, text(200)) }
    }]
  })
  const client = http2.connect(`http://127.0.0.1:${port}`)
  t.teardown(() => { client.close() })
  const table: Array<{ name: string, path: string, accept: string, want: 'gzip' | 'br', body: string }> = [
    { name: 'a proxied answer, gzip', path: '/up/html', accept: 'gzip', want: 'gzip', body: upstreamAnswers.html?.body as string },
    { name: 'a proxied answer, br', path: '/up/html', accept: 'gzip, br', want: 'br', body: upstreamAnswers.html?.body as string },
    { name: 'a static file, gzip', path: '/files/page.html', accept: 'gzip', want: 'gzip', body: files['page.html'] as string },
    { name: 'a respond() answer, br', path: '/ret/a.html', accept: 'br', want: 'br', body: text(200) }
  ]
  for (const c of table) {
    const req = client.request({ ':path': c.path, 'accept-encoding': c.accept })
    const parts: Buffer[] = []
    req.on('data', (d: Buffer) => parts.push(d))
    const head = await new Promise<http2.IncomingHttpHeaders>((resolve) => req.once('response', resolve))
    await new Promise((resolve) => req.once('end', resolve))
    const raw = Buffer.concat(parts)
    t.equal(head['content-encoding'], c.want, `${c.name}: Content-Encoding ${c.want}`)
    t.equal(head['content-length'], undefined, `${c.name}: no Content-Length`)
    t.equal((c.want === 'gzip' ? zlib.gunzipSync(raw) : zlib.brotliDecompressSync(raw)).toString(), c.body, `${c.name}: decodes to the original`)
  }
})

t.test('config: compress keys and their inheritance', async (t) => {
  const loc = (top: object, server: object, location: object): unknown => {
    const c = resolveConfig({ ...top, servers: [{ listen: '127.0.0.1:0', ...server, locations: { '/': { handler: respond(200), ...location } } }] } as never)
    const r = c.servers[0]?.locations[0]?.compress
    return r === undefined ? 'off' : { ...r, types: [...r.types], proxied: [...r.proxied] }
  }
  const defaults = { encodings: ['gzip'], types: ['text/html'], minLength: 20, level: 1, proxied: [], vary: false }
  const table: Array<[string, unknown, unknown]> = [
    ['nothing set: off (nginx: gzip off)', loc({}, {}, {}), 'off'],
    ['compress: true at the top: nginx gzip on with its defaults, inherited', loc({ compress: true }, {}, {}), defaults],
    ['a location turns off what its server turned on', loc({}, { compress: true }, { compress: false }), 'off'],
    ['an object: the defaults with its keys; text/html always in types; proxied: true is any',
      loc({}, {}, { compress: { encodings: ['br', 'gzip'], types: ['Application/JSON'], minLength: 0, level: 9, proxied: true, vary: true } }),
      { encodings: ['br', 'gzip'], types: ['text/html', 'application/json'], minLength: 0, level: 9, proxied: ['any'], vary: true }],
    ['an object replaces the enclosing one whole', loc({ compress: { vary: true, level: 5 } }, { compress: { level: 2 } }, {}), { ...defaults, level: 2 }]
  ]
  for (const [name, got, want] of table) t.same(got, want, name)
  const bad = (c: object): string => { try { resolveConfig({ servers: [{ listen: '127.0.0.1:0', compress: c }] } as never); return 'accepted' } catch (err) { return (err as Error).message } }
  t.match(bad({ level: 10 }), /compress/, 'level above 9: refused')
  t.match(bad({ encodings: ['deflate'] }), /compress/, 'an unknown coding: refused')
  t.match(bad({ types: ['html'] }), /MIME types/, 'a type without a slash: refused')
  t.match(bad({ proxied: ['sometimes'] }), /compress/, 'an unknown gzip_proxied keyword: refused')
})
