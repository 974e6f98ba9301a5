/**
 * WebSocket to an app over a unix socket, as examples/websocket.config.ts (the article's third
 * example) ships: examples/ws-upstream.mjs (an echo app on a unix socket) behind it, run with the
 * real CLI: `location /ws/` upgrades to the app over the socket (subprotocol and
 * permessage-deflate through), the page at `/` is served, plain requests to `/ws/` reach the app,
 * `proxyctl check` accepts the config.
 */
import { spawn } from 'node:child_process'
import type { IncomingMessage } from 'node:http'
import path from 'node:path'
import t from 'tap'
import { WebSocket } from 'ws'
import { request, ROOT, runCli, startCli, targetOf, tmpDir } from '../helpers/proxy.js'
import { closed, nextMessage, wsUrl } from '../helpers/ws.js'

t.setTimeout(60_000)

const CONFIG = path.join(ROOT, 'examples', 'websocket.config.ts')

t.test('examples/websocket.config.ts: WebSocket to an app over a unix socket', async (t) => {
  const dir = tmpDir(t, 'proxyctl-ws-example-')
  const socket = path.join(dir, 'puma.sock')
  // The config and the app read these; the CLI inherits our environment.
  process.env.WS_UPSTREAM_SOCKET = socket
  process.env.PROXYCTL_LISTEN = '127.0.0.1:0'

  const app = spawn(process.execPath, [path.join(ROOT, 'examples', 'ws-upstream.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (app.exitCode === null) app.kill('SIGKILL') })
  let appOut = ''
  await new Promise<void>((resolve, reject) => {
    app.stdout.on('data', (d: Buffer) => { appOut += d.toString(); if (appOut.includes('listening on')) resolve() })
    app.once('exit', (code) => reject(new Error(`ws-upstream exited ${code}`)))
    setTimeout(() => reject(new Error('ws-upstream did not start')), 10_000).unref()
  })
  t.match(appOut, `ws upstream listening on unix:${socket}`)

  const check = await runCli(['check', '--config', CONFIG])
  t.equal(check.code, 0, 'proxyctl check accepts the example')
  t.match(check.stdout, /websocket http:\/\/ws/, 'and shows the handler')

  const run = await startCli(t, ['--config', CONFIG])
  const base = run.urls[0] as string

  const ws = new WebSocket(wsUrl(base, '/ws/'), ['echo'])
  ws.on('error', () => {})
  t.teardown(() => ws.terminate())
  const upgraded = new Promise<IncomingMessage>((resolve) => ws.once('upgrade', resolve))
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('unexpected-response', (_q, r) => reject(new Error(`status ${r.statusCode}`))) })
  const res = await upgraded
  t.equal(res.statusCode, 101, '101 Switching Protocols through the proxy')
  t.equal(ws.protocol, 'echo')
  t.match(ws.extensions, /permessage-deflate/, 'the app\'s permessage-deflate reached the client')
  ws.send('hello over a unix socket')
  t.equal((await nextMessage(ws)).data.toString(), 'hello over a unix socket')
  ws.send(Buffer.from([1, 2, 3]))
  const bin = await nextMessage(ws)
  t.ok(bin.binary && bin.data.equals(Buffer.from([1, 2, 3])))
  ws.close(1000, 'done')
  t.same(await closed(ws), { code: 1000, reason: 'done' })
  await new Promise((r) => setTimeout(r, 100))
  t.match(appOut, /connection \/ws\/ from direct, protocol "echo"/, 'the app saw the upgrade (no X-Forwarded-For: the article sets none)')

  const page = await request(targetOf(base), { path: '/' })
  t.equal(page.status, 200)
  t.match(page.body, /new WebSocket\('ws:\/\/' \+ location\.host \+ '\/ws\/'\)/, 'the demo page is served')
  const plain = await request(targetOf(base), { path: '/ws/status' })
  t.equal(plain.body, 'ws-upstream: GET /ws/status (upgrade to WebSocket for an echo)\n', 'plain requests to /ws/ reach the app too')

  t.equal(await run.stop('SIGTERM'), 0)
  app.kill('SIGTERM')
})
