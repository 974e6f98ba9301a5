#!/usr/bin/env node
// A tiny WebSocket echo server on a unix socket: the upstream of examples/websocket.config.ts
// (the article's puma app). Echoes every message (text stays text, binary stays binary), picks
// the first subprotocol offered, and answers plain HTTP requests with one line.
//
//   node examples/ws-upstream.mjs            # listens on unix:/tmp/proxyctl-ws-upstream.sock
//   WS_UPSTREAM_SOCKET=/tmp/x.sock node examples/ws-upstream.mjs
import fs from 'node:fs'
import http from 'node:http'
import { WebSocketServer } from 'ws'

const socketPath = process.env.WS_UPSTREAM_SOCKET ?? '/tmp/proxyctl-ws-upstream.sock'

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' })
  res.end(`ws-upstream: ${req.method} ${req.url} (upgrade to WebSocket for an echo)\n`)
})
const wss = new WebSocketServer({ server, perMessageDeflate: true })
wss.on('connection', (ws, req) => {
  console.log(`connection ${req.url} from ${req.headers['x-forwarded-for'] ?? 'direct'}, protocol "${ws.protocol}"`)
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  ws.on('error', () => {})
})

try { fs.unlinkSync(socketPath) } catch {}
server.listen(socketPath, () => console.log(`ws upstream listening on unix:${socketPath}`))

const stop = () => {
  for (const ws of wss.clients) ws.close(1001, 'upstream going away')
  server.close(() => { try { fs.unlinkSync(socketPath) } catch {} process.exit(0) })
  setTimeout(() => process.exit(0), 1000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
