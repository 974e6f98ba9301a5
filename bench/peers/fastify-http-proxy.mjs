// Peer: Fastify with @fastify/http-proxy (reply-from over undici), one registration per upstream.
//
// env: PORT, UPSTREAM_TCP (host:port), UPSTREAM_SOCK (unix socket path)
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'

const { PORT, UPSTREAM_TCP, UPSTREAM_SOCK } = process.env
const app = Fastify({ logger: false, keepAliveTimeout: 75_000, bodyLimit: 16 * 1024 * 1024 })
const undici = { connections: 64, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 }
app.get('/health', async () => 'ok\n')
await app.register(proxy, { upstream: `http://${UPSTREAM_TCP}`, prefix: '/tcp', rewritePrefix: '/tcp', undici })
await app.register(proxy, { upstream: `unix+http://${encodeURIComponent(UPSTREAM_SOCK)}`, prefix: '/unix', rewritePrefix: '/unix', undici })
await app.listen({ port: Number(PORT), host: '127.0.0.1' })
const stop = () => { app.close().finally(() => process.exit(0)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
