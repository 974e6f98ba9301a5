/** nginx's rewrite and server-level return (fixtures/rewrite-cases.ts) through a real proxyctl. */
import path from 'node:path'
import t from 'tap'
import { proxy, respond, type ProxyConfig } from 'proxyctl'
import { freePort } from '../helpers/failure.js'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { playRewriteCase, rewriteCases, startEchoUpstream, type Site } from './fixtures/rewrite-cases.js'

t.test('rewrite and return, as nginx', async (t) => {
  const app = path.join(tmpDir(t), 'app.sock')
  await startEchoUpstream(t, app)
  const ports: Record<Site, number> = { main: await freePort(), 'https-only': await freePort() }
  const p = (tag: string): ReturnType<typeof proxy> => proxy(`http://unix:${app}:`, { setHeaders: { 'X-Loc': tag } })
  const config: ProxyConfig = {
    servers: [
      {
        listen: `127.0.0.1:${ports.main}`,
        rewrite: ['^/old/(.*)$ /new/$1 last', '^/perm/(.*)$ /p/$1 permanent', '^/temp$ /t redirect', '^/abs$ http://example.com/abs', '^/args$ /shown?b=2', { regex: '^/noargs$', replacement: '/shown?' }],
        locations: {
          '/': p('root'),
          '/new/': p('new'),
          '/shown': p('shown'),
          '/loc/': { rewrite: ['^/loc/(.*)$ /new/loc-$1 last'], handler: p('loc') },
          '/brk/': { rewrite: ['^/brk/(.*)$ /else/$1 break'], handler: p('brk') },
          '/chain/': { rewrite: ['^/chain/a$ /chain/b', '^/chain/b$ /new/c'], handler: p('chain') },
          '/loop/': { rewrite: ['^/loop/(.*)$ /loop/$1 last'], handler: p('loop') }
        }
      },
      { listen: `127.0.0.1:${ports['https-only']}`, return: respond(301, 'https://$host$request_uri'), locations: { '/': p('never') } }
    ]
  }
  await startConfig(t, config)
  for (const c of rewriteCases) t.equal(await playRewriteCase(ports, c), c.expected, c.name)
})
