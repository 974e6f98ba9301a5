// proxyctl over TLS (the TLS scenario of run.mjs): bench/configs/proxyctl.config.mjs's small-GET
// route behind a `listen ... https` with one certificate (CERT, KEY: files run.mjs generates);
// HTTP2=1 adds `http2: true` (the h2 scenario).
import { defineConfig, proxy, respond } from 'proxyctl'

const { PORT, UPSTREAM_TCP, CERT, KEY, HTTP2 } = process.env
if (PORT === undefined || UPSTREAM_TCP === undefined || CERT === undefined || KEY === undefined) throw new Error('PORT, UPSTREAM_TCP, CERT and KEY must be set (bench/run.mjs sets them)')

export default defineConfig({
  keepaliveRequests: 1_000_000,
  // Off, as nginx's TLS bench config (access_log off) and bench/configs/proxyctl.config.mjs.
  accessLog: false,
  upstreams: { up_tcp: { servers: [UPSTREAM_TCP] } },
  servers: [{
    listen: { address: `127.0.0.1:${PORT}`, https: { cert: CERT, key: KEY }, http2: HTTP2 === '1' },
    serverName: ['localhost', '127.0.0.1'],
    locations: {
      '= /health': respond(200, 'ok\n'),
      '/tcp/': proxy('http://up_tcp'),
      '/': respond(404)
    }
  }]
})
