// proxyctl as benchmarked: a real config run by `proxyctl start`. Server selection (two servers,
// the request's Host picks the first), a small location tree, the proxy plugin with its default
// headers, named upstreams, the default log level. Ports come from the environment (run.mjs).
import { defineConfig, proxy, respond } from 'proxyctl'

const { PORT, UPSTREAM_TCP, UPSTREAM_SOCK } = process.env
if (PORT === undefined || UPSTREAM_TCP === undefined || UPSTREAM_SOCK === undefined) throw new Error('PORT, UPSTREAM_TCP and UPSTREAM_SOCK must be set (bench/run.mjs sets them)')

export default defineConfig({
  // As nginx's bench config: wrk's connections are not closed every 1000 requests, the 64 KiB
  // upload is buffered in memory (128k), and the front-door scenario's slowloris heads are closed
  // after 10 s.
  keepaliveRequests: 1_000_000,
  // Off, as nginx's bench config (access_log off); ACCESS_LOG=FILE (the proxyctl-log peer) turns
  // on nginx's combined format to that file.
  accessLog: process.env.ACCESS_LOG ?? false,
  // METRICS_LISTEN (the proxyctl-metrics peer): metrics on, served on a socket of their own.
  ...(process.env.METRICS_LISTEN ? { metrics: { listen: process.env.METRICS_LISTEN } } : {}),
  clientBodyBufferSize: '128k',
  clientHeaderTimeout: 10_000,
  // LIMIT_REQ=1 (the proxyctl-limitreq peer): every request through limitReq on a per-address
  // zone with a rate no load here reaches, so each is counted and passes.
  ...(process.env.LIMIT_REQ === '1'
    ? { limitReqZones: { perip: { key: '$binary_remote_addr', rate: '1000000r/s' } }, limitReq: { zone: 'perip', burst: 100 } }
    : {}),
  // The cache scenarios (run.mjs sets CACHE_DIR, and REDIS_URL when it started a Redis).
  caches: {
    mem: { store: 'memory' },
    disk: { store: { path: process.env.CACHE_DIR ?? `${process.env.TMPDIR ?? '/tmp'}/proxyctl-bench-cache` } },
    ...(process.env.REDIS_URL ? { redis: { store: { redis: process.env.REDIS_URL } } } : {})
  },
  upstreams: {
    up_tcp: { servers: [UPSTREAM_TCP] },
    up_unix: { servers: [`unix:${UPSTREAM_SOCK}`] }
  },
  servers: [
    {
      listen: [`127.0.0.1:${PORT}`],
      serverName: ['localhost', '127.0.0.1'],
      locations: {
        '= /health': respond(200, 'ok\n'),
        // REQUEST_BUFFERING=off: bodies streamed to the upstream as they come (proxy_request_buffering off).
        '/tcp/': proxy('http://up_tcp', process.env.REQUEST_BUFFERING === 'off' ? { requestBuffering: false } : {}),
        '/unix/': proxy('http://up_unix'),
        // The gzip scenario: compress at level 1 (nginx's default), as the nginx peer's gzip.
        '/gzip/': { compress: { types: ['application/json'], level: 1 }, handler: proxy('http://up_tcp') },
        // The cache scenarios: as nginx's proxy_cache_valid 200 10m.
        '/cache-mem/': proxy('http://up_tcp/tcp/', { cache: { zone: 'mem', valid: { 200: 600_000 } } }),
        '/cache-disk/': proxy('http://up_tcp/tcp/', { cache: { zone: 'disk', valid: { 200: 600_000 } } }),
        ...(process.env.REDIS_URL ? { '/cache-redis/': proxy('http://up_tcp/tcp/', { cache: { zone: 'redis', valid: { 200: 600_000 } } }) } : {}),
        '/': respond(404)
      }
    },
    {
      listen: [`127.0.0.1:${PORT}`],
      serverName: ['other.example'],
      locations: { '/': respond(404) }
    }
  ]
})
