/**
 * Message mode (`websocket(target, { messages })`, on @fastify/websocket): plugins see whole
 * messages and may rewrite, drop or meter them; hooks are scoped like phase hooks; what must
 * pass end to end still does (subprotocol, cookies, close codes, refusals, large binaries);
 * failover and backpressure hold.
 */
import crypto from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import t from 'tap'
import type { FastifyPluginAsync } from 'fastify'
import { WebSocket } from 'ws'
import { addPhaseHook } from '@proxyctl/core'
import { websocket, type WebSocketMessage } from 'proxyctl'
import { startConfig } from '../helpers/proxy.js'
import { rawExchange } from '../helpers/raw-http.js'
import { freePort, startLogged } from '../helpers/failure.js'
import { waitFor } from '../helpers/lifecycle.js'
import { closed, nextMessage, openWs, startWsUpstream, wsUrl } from '../helpers/ws.js'

t.setTimeout(60_000)
const MiB = 1024 * 1024

t.test('plugins rewrite, drop and meter messages; hooks are scoped', async (t) => {
  const up = await startWsUpstream(t, { port: 0 })
  const seen: Array<{ from: string, data: string, location: string }> = []
  const shout: FastifyPluginAsync = async (f) => {
    addPhaseHook(f, 'message', (_ctx, m) => {
      if (m.from === 'client' && !m.binary) m.data = m.data.toString().toUpperCase()
    })
  }
  const censor: FastifyPluginAsync = async (f) => {
    addPhaseHook(f, 'message', (_ctx, m) => { if (m.data.toString().includes('SECRET')) m.drop = true })
  }
  const meter: FastifyPluginAsync = async (f) => {
    addPhaseHook(f, 'message', (ctx, m) => {
      const key = `bytes:${m.from}`
      ctx.locals[key] = (Number(ctx.locals[key]) || 0) + m.data.length
      seen.push({ from: m.from, data: m.data.toString(), location: ctx.location?.key ?? '' })
    })
  }
  const proxy = await startConfig(t, {
    plugins: [meter],
    servers: [{
      listen: '127.0.0.1:0',
      locations: {
        '/loud/': { plugins: [shout, censor], handler: websocket(up.target, { messages: true }) },
        '/quiet/': websocket(up.target, { messages: (_ctx: unknown, m: WebSocketMessage) => { if (m.from === 'upstream') m.data = `echo: ${m.data.toString()}` } })
      }
    }]
  })
  const loud = await openWs(t, wsUrl(proxy.listeners[0]?.url as string, '/loud/'))
  loud.send('hello')
  t.equal((await nextMessage(loud)).data.toString(), 'HELLO', 'rewritten on the way up, echoed as rewritten')
  loud.send('a secret')
  loud.send('after')
  t.equal((await nextMessage(loud)).data.toString(), 'AFTER', 'the secret was dropped')
  const bin = crypto.randomBytes(64)
  loud.send(bin)
  const b = await nextMessage(loud)
  t.ok(b.binary && b.data.equals(bin), 'binary untouched by a text-only hook')

  const quiet = await openWs(t, wsUrl(proxy.listeners[0]?.url as string, '/quiet/'))
  quiet.send('hello')
  t.equal((await nextMessage(quiet)).data.toString(), 'echo: hello', 'inline hook on the way down; the sibling\'s hooks do not apply')

  t.same(seen.filter((s) => s.location === '/loud/').map((s) => `${s.from}:${s.data}`),
    ['client:hello', 'upstream:HELLO', 'client:a secret', 'client:after', 'upstream:AFTER', `client:${bin.toString()}`, `upstream:${bin.toString()}`],
    'the global meter saw every message before the location\'s hooks')
  t.same(seen.filter((s) => s.location === '/quiet/').map((s) => `${s.from}:${s.data}`), ['client:hello', 'upstream:hello'])
})

t.test('what passes end to end: subprotocol, headers, cookies, deflate per hop, close codes, big binaries', async (t) => {
  const serverClosed: Array<{ code: number, reason: string }> = []
  const up = await startWsUpstream(t, { port: 0 }, {
    perMessageDeflate: true,
    handleProtocols: (offered) => offered.has('v2') ? 'v2' : false,
    headers: ['Set-Cookie: sid=42'],
    onConnection (ws, req) {
      ws.on('message', (d, isBinary) => ws.send(d as Buffer, { binary: isBinary }))
      ws.on('close', (code, reason) => serverClosed.push({ code, reason: reason.toString() }))
      if (req.url === '/ws/bye') setTimeout(() => ws.close(4100, 'upstream bye'), 50)
    }
  })
  const proxy = await startConfig(t, { servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket(up.target, { messages: true, xForwarded: { for: true } }) } }] })
  const url = (p: string): string => wsUrl(proxy.listeners[0]?.url as string, p)
  const ws = new WebSocket(url('/ws/a'), ['v1', 'v2'], { headers: { Origin: 'http://app.test', Cookie: 'c=1' } })
  ws.on('error', () => {})
  t.teardown(() => ws.terminate())
  const upgraded = new Promise<IncomingMessage>((resolve) => ws.once('upgrade', resolve))
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('unexpected-response', reject) })
  const res = await upgraded
  t.equal(ws.protocol, 'v2', 'the upstream\'s subprotocol')
  t.same(res.headers['set-cookie'], ['sid=42'], 'the upstream\'s cookie')
  t.match(ws.extensions, /permessage-deflate/, 'deflate on the client\'s hop')
  const h = up.seen[0]?.headers ?? {}
  t.equal(h['sec-websocket-protocol'], 'v1,v2', 'the client\'s offer went upstream')
  t.match(String(h['sec-websocket-extensions']), /permessage-deflate/, 'deflate offered on the upstream\'s hop')
  t.equal(h.origin, 'http://app.test')
  t.equal(h.cookie, 'c=1')
  t.equal(h['x-forwarded-for'], '127.0.0.1')
  const big = crypto.randomBytes(16 * MiB)
  ws.send(big)
  const back = await nextMessage(ws, 30_000)
  t.ok(back.binary && back.data.equals(big), '16 MiB binary echoed')
  ws.close(4001, 'client bye')
  t.same(await closed(ws), { code: 4001, reason: 'client bye' })
  await waitFor(() => serverClosed.length > 0, 1000)
  t.same(serverClosed[0], { code: 4001, reason: 'client bye' }, 'the upstream got the client\'s close code and reason')
  const bye = await openWs(t, url('/ws/bye'), ['v2'])
  t.same(await closed(bye), { code: 4100, reason: 'upstream bye' }, 'the client got the upstream\'s close code and reason')
})

t.test('refusals pass, invalid handshakes are answered 400 without contacting the upstream, failover works', async (t) => {
  const up = await startWsUpstream(t, { port: 0 }, {
    onUpgrade (req, socket) {
      if (req.url !== '/ws/private') return false
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno\n')
      return true
    }
  })
  const dead = await freePort()
  const p = await startLogged(t, {
    upstreams: { ws: { servers: [`127.0.0.1:${dead}`, up.address] } },
    servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket('http://ws', { messages: true }) } }]
  })
  const url = (path: string): string => wsUrl(`http://127.0.0.1:${p.port}`, path)
  const ws = await openWs(t, url('/ws/x'))
  ws.send('through')
  t.equal((await nextMessage(ws)).data.toString(), 'through', 'opened on the live server after the dead one refused')
  t.match(p.errors()[0]?.msg, /ECONNREFUSED.*server: 127\.0\.0\.1:/)
  const refused = await new Promise<{ status: number, body: string }>((resolve) => {
    const r = new WebSocket(url('/ws/private'))
    r.on('error', () => {})
    r.once('unexpected-response', (_req, res) => { let b = ''; res.on('data', (d: Buffer) => { b += d.toString() }); res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b })) })
  })
  t.same(refused, { status: 403, body: 'no\n' })
  const seenBefore = up.seen.length
  const bad = await rawExchange({ port: p.port }, 'GET /ws/x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', 3000)
  t.match(bad, /^HTTP\/1\.1 400 /, 'no Sec-WebSocket-Key: 400')
  t.equal(up.seen.length, seenBefore, 'the upstream was not contacted')
})

t.test('backpressure: a client that stops reading pauses the upstream', async (t) => {
  let sent = 0
  let stop = false
  const up = await startWsUpstream(t, { port: 0 }, {
    perMessageDeflate: false,
    onConnection (ws) {
      const chunk = Buffer.alloc(MiB)
      const pump = (): void => {
        if (stop || ws.readyState !== WebSocket.OPEN) return
        while (ws.bufferedAmount < 2 * MiB && sent < 200 * MiB) { ws.send(chunk); sent += MiB }
        setTimeout(pump, 5)
      }
      pump()
    }
  })
  t.teardown(() => { stop = true })
  const proxy = await startConfig(t, { servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket(up.target, { messages: { perMessageDeflate: false } }) } }] })
  const ws = await openWs(t, wsUrl(proxy.listeners[0]?.url as string, '/ws/'), [], { perMessageDeflate: false })
  ws.pause()
  await new Promise((r) => setTimeout(r, 1500))
  t.ok(sent < 48 * MiB, `the upstream stalled at ${sent / MiB} MiB while the client read nothing`)
  let got = 0
  ws.on('message', (d: Buffer) => { got += d.length })
  ws.resume()
  const target = sent + 20 * MiB
  await waitFor(() => got >= target, 5000)
  t.ok(got >= target, 'it flows again once the client reads')
  stop = true
})

t.test('message mode keeps readTimeout and maxConnections, with their log lines', async (t) => {
  const up = await startWsUpstream(t, { port: 0 })
  const p = await startLogged(t, { servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket(up.target, { messages: true, readTimeout: 300, maxConnections: 1 }) } }] })
  const url = wsUrl(`http://127.0.0.1:${p.port}`, '/ws/')
  const ws = await openWs(t, url)
  const second = await new Promise<number>((resolve) => {
    const r = new WebSocket(url)
    r.on('error', () => {})
    r.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume() })
  })
  t.equal(second, 503, 'maxConnections')
  const t0 = Date.now()
  const c = await closed(ws, 3000)
  t.ok(Date.now() - t0 < 1500, `idle relay closed after ${Date.now() - t0} ms`)
  t.equal(c.code, 1006)
  t.ok(p.lines.some((l) => l.level === 'warn' && /^websocket relay idle for 300 ms \(readTimeout\)/.test(l.msg)))
  await waitFor(() => p.lines.some((l) => /relay closed/.test(l.msg)), 1000)
  t.match(p.lines.find((l) => /relay closed/.test(l.msg))?.msg, /^websocket relay closed \(idle for 300 ms \(readTimeout\)\) after \d+ ms, 0 messages from client, 0 from upstream/)
  const again = await openWs(t, url)
  again.send('x')
  t.equal((await nextMessage(again)).data.toString(), 'x', 'the slot was given back')
})
