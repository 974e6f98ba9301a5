/**
 * The byte tunnel of `websocket()`, with real `ws` clients and servers, over TCP and over unix
 * sockets (both the proxy's listener and the upstream): echo, large messages, subprotocols,
 * permessage-deflate end to end, headers both ways, close codes, fragmentation, ping/pong, an
 * upstream's refusal, plain HTTP on the same location, half-close and byte exactness.
 */
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import t from 'tap'
import type { IncomingMessage } from 'node:http'
import { WebSocket, WebSocketServer } from 'ws'
import { respond } from '@proxyctl/core'
import { websocket } from '@proxyctl/plugins'
import { request, startConfig, tmpDir } from '../helpers/proxy.js'
import { rawConnection, rawExchange } from '../helpers/raw-http.js'
import { waitFor, type Teardown } from '../helpers/lifecycle.js'
import { closed, nextMessage, openWs, rawHandshake, startRawWsUpstream, startWsUpstream, wsUrl } from '../helpers/ws.js'

t.setTimeout(60_000)

const MiB = 1024 * 1024

interface Setup {
  /** ws:// URL (or ws+unix:) of a path through the proxy. */
  url (p: string): string
  /** Plain HTTP target of the proxy listener. */
  http: { port: number } | { socketPath: string }
}

for (const transport of ['tcp', 'unix'] as const) {
  /** A proxy with `/ws/` tunnelled to a ws upstream (upstream and listener both on `transport`). */
  async function setup (tt: Teardown, upstreamOptions: Parameters<typeof startWsUpstream>[2] = {}, wsOptions: Parameters<typeof websocket>[1] = {}): Promise<Setup & { up: Awaited<ReturnType<typeof startWsUpstream>> }> {
    const dir = tmpDir(tt, 'proxyctl-ws-')
    const up = await startWsUpstream(tt, transport === 'tcp' ? { port: 0 } : { path: path.join(dir, 'up.sock') }, upstreamOptions)
    const listenSock = path.join(dir, 'proxy.sock')
    const proxy = await startConfig(tt, {
      upstreams: { ws: { servers: [up.address] } },
      servers: [{
        listen: transport === 'tcp' ? '127.0.0.1:0' : `unix:${listenSock}`,
        serverName: 'proxy.test',
        locations: {
          '/ws/': websocket('http://ws', wsOptions),
          '/page': respond(200, 'a page\n')
        }
      }]
    })
    const base = proxy.listeners[0]?.url as string
    return {
      up,
      url: (p) => transport === 'tcp' ? wsUrl(base, p) : `ws+unix:${listenSock}:${p}`,
      http: transport === 'tcp' ? { port: Number(new URL(base).port) } : { socketPath: listenSock }
    }
  }

  t.test(`${transport}: /ws answers 301 to /ws/, as a proxy() location (nginx's auto redirect)`, async (t) => {
    const s = await setup(t)
    const res = await request(s.http, { path: '/ws?a=1', headers: { host: 'proxy.test' } })
    t.equal(res.status, 301, 'status')
    t.match(String(res.headers.location), /\/ws\/\?a=1$/, 'Location keeps the query')
  })

  t.test(`${transport}: text and binary echo, a 16 MiB binary message`, async (t) => {
    const s = await setup(t)
    const ws = await openWs(t, s.url('/ws/echo'))
    ws.send('hello through the tunnel')
    const text = await nextMessage(ws)
    t.equal(text.data.toString(), 'hello through the tunnel')
    t.equal(text.binary, false, 'text stays text')
    const bin = crypto.randomBytes(1000)
    ws.send(bin)
    const b = await nextMessage(ws)
    t.equal(b.binary, true, 'binary stays binary')
    t.same(b.data, bin)
    const big = crypto.randomBytes(16 * MiB)
    ws.send(big)
    const echoed = await nextMessage(ws, 30_000)
    t.equal(echoed.data.length, big.length, '16 MiB back')
    t.equal(crypto.createHash('sha256').update(echoed.data).digest('hex'), crypto.createHash('sha256').update(big).digest('hex'), 'identical bytes')
    t.equal(s.up.seen[0]?.url, '/ws/echo', 'the upstream got the path')
    ws.close()
    await closed(ws)
  })

  t.test(`${transport}: subprotocol selection passes through`, async (t) => {
    const s = await setup(t, { handleProtocols: (offered) => offered.has('chat.v2') ? 'chat.v2' : false })
    const ws = await openWs(t, s.url('/ws/chat'), ['chat.v1', 'chat.v2'])
    t.equal(ws.protocol, 'chat.v2', 'the client gets the upstream\'s choice')
    t.equal(s.up.seen[0]?.headers['sec-websocket-protocol'], 'chat.v1,chat.v2', 'the upstream saw the client\'s offer')
    ws.close()
  })

  t.test(`${transport}: permessage-deflate is negotiated end to end`, async (t) => {
    let upstreamSocketBytes = 0
    const s = await setup(t, {
      perMessageDeflate: true,
      onConnection (ws) {
        ws.on('message', (data, isBinary) => {
          upstreamSocketBytes = (ws as unknown as { _socket: { bytesRead: number } })._socket.bytesRead
          ws.send(data as Buffer, { binary: isBinary })
        })
      }
    })
    const ws = await openWs(t, s.url('/ws/deflate'), [], { perMessageDeflate: true })
    t.match(ws.extensions, /permessage-deflate/, 'the client has permessage-deflate')
    t.match(String(s.up.seen[0]?.headers['sec-websocket-extensions']), /^permessage-deflate; client_max_window_bits$/, 'the upstream saw the client\'s own offer')
    const text = 'compress me '.repeat(100_000) // 1.2 MB, very compressible
    ws.send(text)
    const back = await nextMessage(ws)
    t.equal(back.data.toString(), text, 'the message survives')
    t.ok(upstreamSocketBytes < 100_000, `the upstream read ${upstreamSocketBytes} bytes for 1.2 MB of text: frames stayed compressed through the proxy`)
    ws.close()
  })

  t.test(`${transport}: request headers reach the upstream, 101 headers reach the client`, async (t) => {
    const s = await setup(t, { headers: ['Set-Cookie: session=abc; Path=/', 'X-Upstream: ws-1'] }, {
      setHeaders: { 'X-Proxy': 'via $server_name' },
      xForwarded: { for: true }
    })
    const ws = new WebSocket(s.url('/ws/h'), {
      headers: { Origin: 'http://app.test', Cookie: 'a=1; b=2', Authorization: 'Bearer tok', 'X-Forwarded-For': '10.9.9.9' }
    })
    ws.on('error', () => {})
    t.teardown(() => ws.terminate())
    const upgraded = new Promise<IncomingMessage>((resolve, reject) => { ws.once('upgrade', resolve); ws.once('error', reject) })
    const opened = new Promise((resolve) => ws.once('open', resolve))
    const res = await upgraded
    await opened
    t.equal(res.statusCode, 101)
    t.same(res.headers['set-cookie'], ['session=abc; Path=/'], 'the upstream\'s cookie reaches the client')
    t.equal(res.headers['x-upstream'], 'ws-1')
    t.ok(res.headers['sec-websocket-accept'], 'Sec-WebSocket-Accept as the upstream computed it (the client verified it)')
    const h = s.up.seen[0]?.headers ?? {}
    t.equal(h.origin, 'http://app.test')
    t.equal(h.cookie, 'a=1; b=2')
    t.equal(h.authorization, 'Bearer tok')
    t.equal(h['x-proxy'], 'via proxy.test', 'setHeaders applies')
    t.equal(h['x-forwarded-for'], transport === 'tcp' ? '10.9.9.9, 127.0.0.1' : '10.9.9.9, unix:', 'X-Forwarded-For gets the client added')
    t.equal(h.upgrade, 'websocket')
    t.equal(String(h.connection).toLowerCase(), 'upgrade')
    t.equal(h.host, 'ws', 'Host is $proxy_host (the upstream\'s name), as nginx')
    ws.close()
  })

  t.test(`${transport}: close codes and reasons pass both ways`, async (t) => {
    const serverClosed: Array<{ code: number, reason: string }> = []
    const s = await setup(t, {
      onConnection (ws, req) {
        ws.on('close', (code, reason) => serverClosed.push({ code, reason: reason.toString() }))
        if (req.url === '/ws/server-closes') setTimeout(() => ws.close(4002, 'server says bye'), 50)
      }
    })
    const a = await openWs(t, s.url('/ws/client-closes'))
    a.close(4001, 'client says bye')
    t.same(await closed(a), { code: 4001, reason: 'client says bye' }, 'the client gets the echo of its close')
    await waitFor(() => serverClosed.length > 0, 1000)
    t.same(serverClosed[0], { code: 4001, reason: 'client says bye' }, 'the upstream saw the client\'s code and reason')
    const b = await openWs(t, s.url('/ws/server-closes'))
    t.same(await closed(b), { code: 4002, reason: 'server says bye' }, 'the client saw the upstream\'s code and reason')
  })

  t.test(`${transport}: fragmented messages and ping/pong pass untouched`, async (t) => {
    const pongsAtUpstream: string[] = []
    const s = await setup(t, {
      onConnection (ws) {
        ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }))
        ws.on('pong', (d) => pongsAtUpstream.push(d.toString()))
        ws.ping('from-upstream')
      }
    })
    const ws = await openWs(t, s.url('/ws/frag'))
    ws.send('frag-', { fin: false })
    ws.send('ment-', { fin: false })
    ws.send('ed', { fin: true })
    t.equal((await nextMessage(ws)).data.toString(), 'frag-ment-ed', 'three frames, one message')
    const pong = new Promise<string>((resolve) => ws.once('pong', (d) => resolve(d.toString())))
    ws.ping('from-client')
    t.equal(await pong, 'from-client', 'the upstream\'s pong reaches the client with its payload')
    await waitFor(() => pongsAtUpstream.length > 0, 1000)
    t.same(pongsAtUpstream, ['from-upstream'], 'the client\'s pong reaches the upstream')
    ws.close()
  })

  t.test(`${transport}: an upstream refusing the upgrade (401) is passed on as an HTTP response`, async (t) => {
    const s = await setup(t, {
      onUpgrade (req, socket) {
        if (req.url !== '/ws/private') return false
        socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="ws"\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nlog in first\n')
        return true
      }
    })
    const ws = new WebSocket(s.url('/ws/private'))
    ws.on('error', () => {})
    t.teardown(() => ws.terminate())
    const got = await new Promise<{ status: number, auth: string, body: string }>((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => {
        let body = ''
        res.on('data', (d: Buffer) => { body += d.toString() })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, auth: String(res.headers['www-authenticate']), body }))
      })
      ws.once('open', () => reject(new Error('opened')))
    })
    t.same(got, { status: 401, auth: 'Bearer realm="ws"', body: 'log in first\n' })
  })

  t.test(`${transport}: plain HTTP requests on the same location are proxied`, async (t) => {
    const s = await setup(t)
    const res = await request(s.http, { path: '/ws/info?x=1', headers: { host: 'proxy.test' } })
    t.equal(res.status, 200)
    t.equal(res.body, 'plain GET /ws/info?x=1')
  })

  t.test(`${transport}: an upgrade to a location without the plugin gets a clean answer`, async (t) => {
    const s = await setup(t)
    const upgrade = (p: string): string => `GET ${p} HTTP/1.1\r\nHost: proxy.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n\r\n`
    const target = 'socketPath' in s.http ? s.http : { port: s.http.port }
    const page = await rawExchange(target, upgrade('/page'), 1000)
    t.match(page, /^HTTP\/1\.1 200 OK\r\n/, 'the location\'s own answer')
    t.match(page, /\r\n\r\na page\n$/)
    // As nginx: an Upgrade it does not tunnel is an ordinary request on a kept-alive connection.
    t.match(page, /\r\nConnection: keep-alive\r\n/i, 'the connection stays open for the next request')
    const none = await rawExchange(target, upgrade('/nowhere'), 1000)
    t.match(none, /^HTTP\/1\.1 404 Not Found\r\n/, 'no location: 404')
  })
}

t.test('half-close: a FIN from the client is passed on, the upstream may still answer', async (t) => {
  const events: string[] = []
  const up = await startRawWsUpstream(t, (socket) => {
    socket.on('data', (d) => events.push(`upstream got ${d.toString()}`))
    socket.on('end', () => {
      events.push('upstream got FIN')
      socket.end('answer after your FIN')
    })
  })
  const proxy = await startConfig(t, { servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket(up.target) } }] })
  const hs = await rawHandshake(t, { port: proxy.listeners[0]?.port as number }, '/ws/half')
  t.match(hs.head, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
  hs.socket.resume()
  let got = ''
  hs.socket.on('data', (d) => { got += d.toString() })
  const ended = new Promise<void>((resolve) => hs.socket.on('end', resolve))
  hs.socket.write('last words')
  await new Promise((r) => setTimeout(r, 100))
  hs.socket.end()
  await ended
  t.same(events, ['upstream got last words', 'upstream got FIN'])
  t.equal(got, 'answer after your FIN', 'data after the client\'s FIN still reaches it, then the upstream\'s FIN')
})

t.test('bytes are not parsed or re-framed: arbitrary bytes pass both ways, with the handshake\'s trailing bytes', async (t) => {
  const fromClient: Buffer[] = []
  const noise = crypto.randomBytes(256 * 1024)
  const up = await startRawWsUpstream(t, (socket, _req, head) => {
    if (head.length > 0) fromClient.push(head)
    socket.on('data', (d) => fromClient.push(d))
    socket.write(noise)
  })
  const proxy = await startConfig(t, { servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket(up.target) } }] })
  const hs = await rawHandshake(t, { port: proxy.listeners[0]?.port as number }, '/ws/raw')
  let got = hs.rest
  hs.socket.on('data', (d) => { got = Buffer.concat([got, d]) })
  hs.socket.resume()
  hs.socket.write(Buffer.from([0xff, 0x00, 0x81, 0x7f]))
  await waitFor(() => got.length >= noise.length && fromClient.length > 0, 2000)
  t.ok(got.equals(noise), 'the upstream\'s bytes arrive exactly')
  t.same(Buffer.concat(fromClient), Buffer.from([0xff, 0x00, 0x81, 0x7f]), 'the client\'s bytes arrive exactly (not WebSocket frames at all)')
})

t.test('the client\'s first frames sent with the handshake are delivered after the 101', async (t) => {
  const frames: Buffer[] = []
  const up = await startRawWsUpstream(t, (socket, _req, head) => {
    if (head.length > 0) frames.push(head)
    socket.on('data', (d) => frames.push(d))
  })
  const proxy = await startConfig(t, { servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket(up.target) } }] })
  const c = rawConnection(t, { port: proxy.listeners[0]?.port as number })
  const key = crypto.randomBytes(16).toString('base64')
  // Head and data in one write: the proxy sees the data as the upgrade's `head`.
  c.write(`GET /ws/early HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\nEARLY`)
  await waitFor(() => Buffer.concat(frames).toString() === 'EARLY', 2000)
  t.equal(Buffer.concat(frames).toString(), 'EARLY')
})

t.test('wss: a TLS listener in front, a TLS upstream behind (https:// target)', async (t) => {
  const dir = tmpDir(t, 'proxyctl-wss-')
  const key = path.join(dir, 'key.pem')
  const cert = path.join(dir, 'cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
  const tlsOptions = { cert: fs.readFileSync(cert), key: fs.readFileSync(key) }
  const upServer = https.createServer(tlsOptions)
  const wss = new WebSocketServer({ server: upServer })
  wss.on('connection', (ws, req) => {
    ws.send(`secure upstream saw ${req.url}`)
    ws.on('message', (d, b) => ws.send(d as Buffer, { binary: b }))
  })
  await new Promise<void>((resolve) => upServer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const c of wss.clients) c.terminate(); wss.close(); upServer.close() })
  const port = (upServer.address() as { port: number }).port
  const proxy = await startConfig(t, {
    servers: [{
      listen: { address: '127.0.0.1:0', https: tlsOptions },
      // Upstream certificates are verified by default: this one is trusted through tls.ca.
      locations: { '/ws/': websocket(`https://127.0.0.1:${port}`, { tls: { ca: cert, serverName: 'localhost' } }), '/untrusted/': websocket(`https://127.0.0.1:${port}`) }
    }]
  })
  const url = (proxy.listeners[0]?.url as string).replace(/^https/, 'wss') + '/ws/tls'
  const ws = await openWs(t, url, [], { rejectUnauthorized: false })
  t.equal((await nextMessage(ws)).data.toString(), 'secure upstream saw /ws/tls')
  ws.send('over TLS twice')
  t.equal((await nextMessage(ws)).data.toString(), 'over TLS twice')
  ws.close(4003, 'tls bye')
  t.same(await closed(ws), { code: 4003, reason: 'tls bye' })
  await t.rejects(openWs(t, url.replace('/ws/tls', '/untrusted/x'), [], { rejectUnauthorized: false }), /unexpected response 502/, 'without tls.ca the self-signed upstream is refused: 502')
})
