/**
 * The article's second example answer by answer (rails365-cases.ts): proxyctl running
 * examples/rails365.config.ts in front of examples/rails365-upstream.mjs on a unix socket, each
 * case's whole answer (status line, every header, body, whether the connection closes) and what
 * the app received for it, against the table. rails365-nginx-compare.ts runs the same cases
 * through Debian's nginx with the article's config.
 */
import path from 'node:path'
import t from 'tap'
import { startCli, targetOf, tmpDir } from '../helpers/proxy.js'
import { CONFIG, expectContext, play, rails365Cases, startApp, type Whole } from './fixtures/rails365-cases.js'

t.test('examples/rails365.config.ts answers every case of the table whole', async t => {
  const sock = path.join(tmpDir(t), 'rails365.sock')
  const app = await startApp(t, sock)
  process.env.RAILS365_SOCKET = sock
  process.env.RAILS365_LISTEN = '127.0.0.1:0,[::1]:0'
  t.teardown(() => { delete process.env.RAILS365_SOCKET; delete process.env.RAILS365_LISTEN })
  const run = await startCli(t, ['--config', CONFIG], { expectListeners: 2 })
  const v4 = targetOf(run.urls[0] as string)
  const v6 = targetOf(run.urls[1] as string)
  const x = expectContext(v4.port as number)
  let prev: Whole | undefined
  for (const c of rails365Cases) {
    if (c.appDown === true) await app.stop()
    prev = await play(c.v6 === true ? v6 : v4, c, prev, app)
    t.strictSame(prev, c.expected(x), c.name)
  }
  t.equal(await run.stop('SIGTERM'), 0, 'proxyctl stops cleanly')
})
