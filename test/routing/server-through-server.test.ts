// Server selection by listen address and Host through a real proxyctl (the full nginx-verified
// Host table is server-select.test.ts; this proves the wiring: listener → selector → 400s).
import t from 'tap'
import { respond } from '@proxyctl/core'
import { startConfig, targetOf, urlOf } from '../helpers/proxy.js'
import { rawExchange } from '../helpers/raw-http.js'

const cases: Array<{ rule: string, listener: 0 | 1, head: string, expect: string | number }> = [
  { rule: 'exact name', listener: 0, head: 'Host: api.example.com', expect: 'api' },
  { rule: 'port in Host is ignored', listener: 0, head: 'Host: api.example.com:8080', expect: 'api' },
  { rule: 'uppercase and trailing dot', listener: 0, head: 'Host: API.Example.COM.', expect: 'api' },
  { rule: 'leading wildcard', listener: 0, head: 'Host: x.y.example.com', expect: 'wild' },
  { rule: 'regex', listener: 0, head: 'Host: node7.example.net', expect: 'regex' },
  { rule: 'unknown name → the marked default server', listener: 0, head: 'Host: nobody.test', expect: 'default' },
  { rule: 'IPv6 literal Host → default server', listener: 0, head: 'Host: [::1]:80', expect: 'default' },
  { rule: 'the other address has its own default (first declared)', listener: 1, head: 'Host: nobody.test', expect: 'api' },
  { rule: 'a name served only on the other address is not matched here', listener: 1, head: 'Host: x.y.example.com', expect: 'api' },
  { rule: 'invalid Host is 400', listener: 0, head: 'Host: a/b', expect: 400 },
  { rule: 'HTTP/1.1 without Host is 400', listener: 0, head: '', expect: 400 }
]

t.test('server selection through real listeners', async (t) => {
  const proxy = await startConfig(t, {
    servers: [
      { listen: ['127.0.0.1:0', '[::1]:0'], serverName: 'api.example.com', locations: { '/': respond(200, 'api') } },
      { listen: '127.0.0.1:0', serverName: '*.example.com', locations: { '/': respond(200, 'wild') } },
      { listen: '127.0.0.1:0', serverName: '~^node\\d+\\.example\\.net$', locations: { '/': respond(200, 'regex') } },
      { listen: { address: '127.0.0.1:0', defaultServer: true }, locations: { '/': respond(200, 'default') } }
    ]
  })
  // Listener 0: 127.0.0.1:0 shared by all four servers; listener 1: [::1]:0, api only.
  for (const c of cases) {
    const head = c.head === '' ? '' : `${c.head}\r\n`
    const raw = await rawExchange(targetOf(urlOf(proxy, c.listener)), `GET / HTTP/1.1\r\n${head}Connection: close\r\n\r\n`)
    if (typeof c.expect === 'number') {
      t.match(raw, new RegExp(`^HTTP/1\\.1 ${c.expect} `), c.rule)
    } else {
      t.match(raw, /^HTTP\/1\.1 200 /, `${c.rule}: status`)
      t.ok(raw.endsWith(`\r\n\r\n${c.expect}`), `${c.rule}: ${c.expect}`)
    }
  }
  const h10 = await rawExchange(targetOf(urlOf(proxy, 0)), 'GET / HTTP/1.0\r\n\r\n')
  t.ok(h10.endsWith('\r\n\r\ndefault'), 'HTTP/1.0 without Host goes to the default server')
})
