/**
 * Server and request-line variables (fixtures/server-variables-cases.ts) through a real proxyctl:
 * the same table fixtures/server-variables-nginx-compare.ts checks against nginx.
 */
import t from 'tap'
import { respond } from 'proxyctl'
import { freePort } from '../helpers/failure.js'
import { startConfig } from '../helpers/proxy.js'
import { playVariableCase, variableCases, type Address } from './fixtures/server-variables-cases.js'

t.test('server and request-line variables, as nginx sets them', async (t) => {
  const ports: Record<Address, number> = { named: await freePort(), wild: await freePort(), under: await freePort() }
  const named = `127.0.0.1:${ports.named}`
  const text = (s: string): ReturnType<typeof respond> => respond(200, `${s}\n`)
  await startConfig(t, {
    servers: [
      { listen: named, serverName: '*.example.com', locations: { '/': text('sn=$server_name host=$host') } },
      { listen: named, serverName: 'mail.*', locations: { '/': text('sn=$server_name host=$host') } },
      { listen: named, serverName: '.example.org', locations: { '/': text('sn=$server_name host=$host') } },
      {
        listen: named,
        serverName: '~^(?<sub>.+)\\.example\\.net$',
        locations: { '/': text('sn=$server_name sub=$sub one=$1'), '~ ^/re/(.+)$': text('sub=$sub one=$1') }
      },
      {
        listen: { address: `127.0.0.1:${ports.wild}`, defaultServer: true },
        serverName: '*.wild.test',
        locations: {
          '/': text('sn=$server_name host=$host ru=$request_uri u=$uri'),
          '/h': respond({ status: 200, body: 'ok\n', headers: { 'X-Uri': '$uri' } }),
          '/xff': text('xff=[$proxy_add_x_forwarded_for]'),
          '/r': respond(302, '/x'),
          '/us': text('a=[$http_x_remote_user] b=[$http_x_a_b]')
        }
      },
      { listen: `127.0.0.1:${ports.under}`, underscoresInHeaders: true, locations: { '/us': text('a=[$http_x_remote_user] b=[$http_x_a_b]') } }
    ]
  })
  for (const c of variableCases) t.equal(await playVariableCase(ports[c.address], c), c.expected, c.name)
})
