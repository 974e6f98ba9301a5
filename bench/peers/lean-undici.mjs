// The lean peer: node:http in front of one undici Pool per upstream, nothing else. No routing
// beyond the /tcp/ and /unix/ prefixes, no header rewriting beyond dropping hop-by-hop headers.
// It is the floor of what a Node.js proxy can cost: proxyctl's overhead is what it adds over this.
//
// env: PORT, UPSTREAM_TCP (host:port), UPSTREAM_SOCK (unix socket path)
import http from 'node:http'
import { Pool } from 'undici'

const { PORT, UPSTREAM_TCP, UPSTREAM_SOCK } = process.env
const opts = { connections: 64, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 }
const tcp = new Pool(`http://${UPSTREAM_TCP}`, opts)
const unix = new Pool('http://localhost', { ...opts, socketPath: UPSTREAM_SOCK })

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect'])

const server = http.createServer((req, res) => {
  if (req.url === '/health') { res.end('ok\n'); return }
  const pool = req.url.startsWith('/unix/') ? unix : tcp
  const headers = []
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1])
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
  pool.stream({ method: req.method, path: req.url, headers, body: hasBody ? req : null }, ({ statusCode, headers }) => {
    for (const h of HOP) delete headers[h]
    res.writeHead(statusCode, headers)
    return res
  }, (err) => {
    if (err === null || err === undefined) return
    if (!res.headersSent) { res.statusCode = 502; res.end() } else res.destroy(err)
  })
})
server.keepAliveTimeout = 75_000
server.listen(Number(PORT), '127.0.0.1')
const stop = () => { server.close(); server.closeAllConnections(); Promise.all([tcp.close(), unix.close()]).finally(() => process.exit(0)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
