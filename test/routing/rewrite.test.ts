/** nginx's rewrite and server-level return (fixtures/rewrite-cases.ts) through a real proxyctl. */
import path from 'node:path'
import t from 'tap'
import { freePort } from '../helpers/failure.js'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { playRewriteCase, proxyctlRewriteConfig, rewriteCases, startEchoUpstream, type Site } from './fixtures/rewrite-cases.js'

t.test('rewrite and return, as nginx', async (t) => {
  const app = path.join(tmpDir(t), 'app.sock')
  await startEchoUpstream(t, app)
  const ports: Record<Site, number> = { main: await freePort(), 'https-only': await freePort() }
  const config = proxyctlRewriteConfig(ports, app)
  await startConfig(t, config)
  for (const c of rewriteCases) t.equal(await playRewriteCase(ports, c), c.expected, c.name)
})
