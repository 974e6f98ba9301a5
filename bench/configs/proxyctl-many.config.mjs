// The selection-cost config: 50 server names and 500 locations (300 prefix, 100 exact, 100 regex).
// The benchmarked request (Host: r49.bench.test, GET /tcp/small) takes the slow path on purpose:
// its Host is matched by the last regex server name (after the exact and wildcard lookups miss and
// every earlier regex name is tried), and its URI has the longest prefix /tcp/ but then every one of
// the 100 regex locations is tried and none matches, so the prefix answers.
import { defineConfig, proxy, respond } from 'proxyctl'

const { PORT, UPSTREAM_TCP, UPSTREAM_SOCK } = process.env
if (PORT === undefined || UPSTREAM_TCP === undefined || UPSTREAM_SOCK === undefined) throw new Error('PORT, UPSTREAM_TCP and UPSTREAM_SOCK must be set (bench/run.mjs sets them)')

const pad = (i) => String(i).padStart(3, '0')
const locations = {}
// 300 prefix locations: /tcp/ (proxied) and 299 others, some of them sharing its first letters.
locations['/tcp/'] = proxy('http://up_tcp')
for (let i = 0; i < 299; i++) locations[i % 3 === 0 ? `/t${pad(i)}/` : `/p${pad(i)}/app/`] = respond(200, 'prefix\n')
// 100 exact locations.
for (let i = 0; i < 100; i++) locations[`= /e${pad(i)}`] = respond(200, 'exact\n')
// 100 regex locations, none matching /tcp/small.
for (let i = 0; i < 50; i++) locations[`~ ^/r${pad(i)}/.*\\.php$`] = respond(200, 'regex\n')
for (let i = 50; i < 100; i++) locations[`~* \\.(x${pad(i)}|y${pad(i)})$`] = respond(200, 'regex\n')

// 50 server names over 50 servers on the same address: 20 exact, 10 leading wildcard, 10 trailing
// wildcard, 10 regex. The benchmarked server is the last regex one.
const servers = []
const listen = [`127.0.0.1:${PORT}`]
const small = { '/': respond(404) }
for (let i = 0; i < 20; i++) servers.push({ listen, serverName: `host${i}.bench.test`, locations: small })
for (let i = 0; i < 10; i++) servers.push({ listen, serverName: `*.w${i}.bench.test`, locations: small })
for (let i = 0; i < 10; i++) servers.push({ listen, serverName: `www.t${i}.*`, locations: small })
for (let i = 0; i < 9; i++) servers.push({ listen, serverName: `~^r${i}-\\d+\\.bench\\.test$`, locations: small })
servers.push({ listen, serverName: '~^r49\\.bench\\.test$', locations })

export default defineConfig({
  upstreams: {
    up_tcp: { servers: [UPSTREAM_TCP] },
    up_unix: { servers: [`unix:${UPSTREAM_SOCK}`] }
  },
  servers
})
