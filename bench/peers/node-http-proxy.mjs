// Peer: node-http-proxy (http-proxy on npm) with a keep-alive agent per upstream.
//
// env: PORT, UPSTREAM_TCP (host:port), UPSTREAM_SOCK (unix socket path)
import http from 'node:http'
import httpProxy from 'http-proxy'

const { PORT, UPSTREAM_TCP, UPSTREAM_SOCK } = process.env
const [host, port] = UPSTREAM_TCP.split(':')
const agentOptions = { keepAlive: true, maxSockets: 64, maxFreeSockets: 64 }
const tcp = httpProxy.createProxyServer({ target: { host, port: Number(port) }, agent: new http.Agent(agentOptions) })
const unix = httpProxy.createProxyServer({ target: { socketPath: UPSTREAM_SOCK }, agent: new http.Agent(agentOptions) })
for (const p of [tcp, unix]) {
  // node-http-proxy aborts the upstream request on the client request's 'aborted' event, which
  // Node >= 16 no longer emits once the request itself was complete (any GET): a client that
  // leaves mid-response (wrk, at the end of every run) leaves the upstream response paused and its
  // keep-alive agent socket taken for good; two 1 MiB runs exhaust the agent. The usual fix:
  p.on('proxyReq', (proxyReq, req, res) => {
    res.on('close', () => { if (!res.writableFinished) proxyReq.destroy() })
  })
  p.on('error', (err, req, res) => {
    if (res instanceof http.ServerResponse && !res.headersSent) { res.statusCode = 502; res.end() } else res.destroy?.(err)
  })
}

const server = http.createServer((req, res) => {
  if (req.url === '/health') { res.end('ok\n'); return }
  (req.url.startsWith('/unix/') ? unix : tcp).web(req, res)
})
server.keepAliveTimeout = 75_000
server.listen(Number(PORT), '127.0.0.1')
const stop = () => { server.close(); server.closeAllConnections(); process.exit(0) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
