/**
 * A tunnel's life: connect-time failover across an upstream's servers (counted toward maxFails),
 * 502 when none answers, maxConnections, the idle timeout (readTimeout), one side dying, and
 * shutdown — with the log lines each one writes.
 */
import t from 'tap'
import type { FastifyPluginAsync } from 'fastify'
import { WebSocket } from 'ws'
import { websocket } from '@proxyctl/plugins'
import { activeConnections, freePort, poolsOf, startLogged } from '../helpers/failure.js'
import { waitFor } from '../helpers/lifecycle.js'
import { closed, nextMessage, openWs, startWsUpstream, wsUrl } from '../helpers/ws.js'

t.setTimeout(60_000)

/** Status of a refused upgrade (rejects if it opens). */
function refusedStatus (url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.on('error', () => {})
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); ws.terminate() })
    ws.once('open', () => { ws.terminate(); reject(new Error('opened')) })
  })
}

t.test('a refused connect tries the next server and counts toward maxFails', async (t) => {
  const dead = await freePort()
  const up = await startWsUpstream(t, { port: 0 })
  const p = await startLogged(t, {
    upstreams: { ws: { servers: [{ address: `127.0.0.1:${dead}`, maxFails: 1, failTimeout: 30_000 }, up.address] } },
    servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket('http://ws') } }]
  })
  const url = wsUrl(`http://127.0.0.1:${p.port}`, '/ws/')
  const first = await openWs(t, url)
  first.send('one')
  t.equal((await nextMessage(first)).data.toString(), 'one', 'the first upgrade reached the live server after the dead one refused')
  const errors = p.errors()
  t.equal(errors.length, 1, 'one failed attempt logged')
  t.match(errors[0]?.msg, /connect\(\) failed \(ECONNREFUSED.*websocket handshake.*upstream: "ws", server: 127\.0\.0\.1:\d+/)
  t.equal(errors[0]?.server, `127.0.0.1:${dead}`)
  const peer = poolsOf(p.proxy)[0]?.peers.find((x) => x.address === `127.0.0.1:${dead}`)
  t.equal(peer?.fails, 1, 'the failure counted on the dead server')
  for (let i = 0; i < 4; i++) {
    const ws = await openWs(t, url)
    ws.close()
  }
  t.equal(p.errors().length, 1, 'with maxFails reached the dead server is not tried again')
  t.equal(up.seen.length, 5)
})

t.test('no server answering: 502, every server tried once', async (t) => {
  const a = await freePort()
  const b = await freePort()
  const p = await startLogged(t, {
    upstreams: { ws: { servers: [`127.0.0.1:${a}`, `127.0.0.1:${b}`] } },
    servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket('http://ws') } }]
  })
  t.equal(await refusedStatus(wsUrl(`http://127.0.0.1:${p.port}`, '/ws/')), 502)
  t.same(p.errors().filter((l) => l.server !== undefined).map((l) => l.server).sort(), [`127.0.0.1:${a}`, `127.0.0.1:${b}`].sort())
})

t.test('maxConnections: beyond it an upgrade gets 503 and a log line', async (t) => {
  const up = await startWsUpstream(t, { port: 0 })
  const p = await startLogged(t, { servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket(up.target, { maxConnections: 2 }) } }] })
  const url = wsUrl(`http://127.0.0.1:${p.port}`, '/ws/')
  const a = await openWs(t, url)
  await openWs(t, url)
  t.equal(await refusedStatus(url), 503, 'the third gets 503')
  const line = p.lines.find((l) => /maxConnections/.test(l.msg))
  t.equal(line?.level, 'warn')
  t.match(line?.msg, 'websocket: maxConnections (2) reached, upgrade of "/ws/" refused with 503')
  a.close()
  await closed(a)
  t.ok(await waitFor(() => p.lines.some((l) => /tunnel closed/.test(l.msg))), 'the closed tunnel gave its slot back')
  const c = await openWs(t, url)
  c.send('ok')
  t.equal((await nextMessage(c)).data.toString(), 'ok', 'a new upgrade is accepted again')
})

t.test('readTimeout: an idle tunnel is closed, an active one is not', async (t) => {
  const up = await startWsUpstream(t, { port: 0 })
  const p = await startLogged(t, { servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket(up.target, { readTimeout: 300 }) } }] })
  const url = wsUrl(`http://127.0.0.1:${p.port}`, '/ws/')
  const idle = await openWs(t, url)
  const busy = await openWs(t, url)
  const t0 = Date.now()
  const timer = setInterval(() => busy.send('tick'), 100)
  t.teardown(() => clearInterval(timer))
  const c = await closed(idle, 3000)
  const ms = Date.now() - t0
  t.equal(c.code, 1006, 'the idle client sees its connection cut')
  t.ok(ms >= 250 && ms < 1500, `closed after ${ms} ms`)
  t.equal(busy.readyState, WebSocket.OPEN, 'the busy tunnel stays open')
  await new Promise((r) => setTimeout(r, 500))
  t.equal(busy.readyState, WebSocket.OPEN, 'still open after 800 ms of traffic')
  const line = p.lines.find((l) => /idle/.test(l.msg))
  t.equal(line?.level, 'warn')
  // nginx's error log context (client, server name, request line, host), then the upstream.
  t.match(line?.msg, /^websocket tunnel idle for 300 ms \(readTimeout\), closing it, client: 127\.0\.0\.1, server: , request: "GET \/ws\/ HTTP\/1\.1", host: "127\.0\.0\.1", upstream: "127\.0\.0\.1:\d+", server: 127\.0\.0\.1:\d+$/)
  t.ok(await waitFor(() => p.lines.some((l) => /tunnel closed \(idle for 300 ms/.test(l.msg))), 'the close line gives the reason')
})

t.test('the upstream dying mid-stream closes the client within a second, and the reverse', async (t) => {
  let streaming: NodeJS.Timeout | undefined
  const up = await startWsUpstream(t, {
    port: 0
  }, {
    onConnection (ws) {
      streaming = setInterval(() => ws.send(Buffer.alloc(64 * 1024)), 5)
      ws.on('close', () => clearInterval(streaming))
    }
  })
  t.teardown(() => clearInterval(streaming))
  const p = await startLogged(t, { servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket(up.target) } }] })
  const url = wsUrl(`http://127.0.0.1:${p.port}`, '/ws/')
  const ws = await openWs(t, url)
  await nextMessage(ws)
  const t0 = Date.now()
  await up.kill()
  const c = await closed(ws, 3000)
  const ms = Date.now() - t0
  t.equal(c.code, 1006, 'the client sees an abnormal close')
  t.ok(ms < 1000, `client closed ${ms} ms after the upstream died`)
  t.ok(await waitFor(() => activeConnections(p.proxy) === 0), 'the peer is released')

  // The other way: the client vanishes, the upstream's socket is closed.
  const up2 = await startWsUpstream(t, { port: 0 })
  const p2 = await startLogged(t, { servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket(up2.target) } }] })
  const ws2 = await openWs(t, wsUrl(`http://127.0.0.1:${p2.port}`, '/ws/'))
  await waitFor(() => up2.clients.size === 1)
  const server = [...up2.clients][0] as WebSocket
  const t1 = Date.now()
  const serverClosed = closed(server, 3000)
  ;(ws2 as unknown as { _socket: { destroy: () => void } })._socket.destroy()
  await serverClosed
  t.ok(Date.now() - t1 < 1000, `upstream closed ${Date.now() - t1} ms after the client died`)
  t.ok(await waitFor(() => p2.lines.some((l) => /tunnel closed \(client/.test(l.msg))), 'logged as closed by the client')
})

t.test('shutdown cuts open tunnels; the close line says so', async (t) => {
  const up = await startWsUpstream(t, { port: 0 })
  const p = await startLogged(t, { servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket(up.target) } }] })
  const ws = await openWs(t, wsUrl(`http://127.0.0.1:${p.port}`, '/ws/'))
  const c = closed(ws, 5000)
  await p.proxy.close(100)
  t.equal((await c).code, 1006)
  t.ok(await waitFor(() => p.lines.some((l) => /tunnel closed \(proxy shutting down\)/.test(l.msg))), JSON.stringify(p.lines.map((l) => l.msg)))
})

t.test('nextUpstream http_502: a 502 answer to the handshake tries the next server', async (t) => {
  const bad = await startWsUpstream(t, { port: 0 }, {
    onUpgrade (_req, socket) { socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n'); return true }
  })
  const good = await startWsUpstream(t, { port: 0 })
  const p = await startLogged(t, {
    upstreams: { ws: { servers: [bad.address, good.address] } },
    servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': websocket('http://ws', { nextUpstream: { on: ['error', 'http_502'] } }) } }]
  })
  const ws = await openWs(t, wsUrl(`http://127.0.0.1:${p.port}`, '/ws/'))
  t.equal(ws.readyState, WebSocket.OPEN)
  t.equal(bad.seen.length, 1)
  t.equal(good.seen.length, 1)
})

t.test('a location plugin may deny an upgrade before the upstream is contacted', async (t) => {
  const up = await startWsUpstream(t, { port: 0 })
  const auth: FastifyPluginAsync = async (f) => {
    f.addHook('onRequest', async (request, reply) => {
      if (request.headers.authorization !== 'Bearer good') await reply.code(403).send('no token\n')
    })
  }
  const p = await startLogged(t, { servers: [{ listen: '127.0.0.1:0', locations: { '/ws/': { plugins: [auth], handler: websocket(up.target) } } }] })
  const url = wsUrl(`http://127.0.0.1:${p.port}`, '/ws/')
  t.equal(await refusedStatus(url), 403, 'denied')
  t.equal(up.seen.length, 0, 'the upstream never saw it')
  const ws = await openWs(t, url, [], { headers: { Authorization: 'Bearer good' } })
  ws.send('in')
  t.equal((await nextMessage(ws)).data.toString(), 'in', 'allowed with the token')
})
