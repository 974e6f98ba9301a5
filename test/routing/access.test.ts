/** nginx's allow/deny (fixtures/access-cases.ts) through a real proxyctl over 127.0.0.1, [::1] and a unix socket. */
import path from 'node:path'
import t from 'tap'
import { respond } from 'proxyctl'
import { captureLogger, freePort } from '../helpers/failure.js'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { accessCases, playAccessCase, proxyctlAccessConfig, startAccessUpstream, type Via } from './fixtures/access-cases.js'

t.test('allow and deny, first match wins, as nginx', async (t) => {
  const port = await freePort()
  const dir = tmpDir(t)
  const sock = path.join(dir, 'p.sock')
  const app = path.join(dir, 'app.sock')
  await startAccessUpstream(t, app)
  const { logger, lines } = captureLogger()
  const config = proxyctlAccessConfig(port, sock, app)
  const server = config.servers[0] as NonNullable<typeof config.servers[0]>
  server.locations = { ...server.locations, '/answer': { access: ['deny all'], handler: respond(200, 'secret\n') } }
  await startConfig(t, config, logger)
  const targets: Record<Via, { port?: number, host?: string, socketPath?: string }> = { v4: { port }, v6: { port, host: '::1' }, unix: { socketPath: sock } }
  for (const c of accessCases) t.equal(await playAccessCase(targets, c), c.expected, c.name)
  // Deliberate difference (README): nginx's `return` runs before its access phase and would answer.
  t.equal(await playAccessCase(targets, { name: '', path: '/answer', via: 'v4', expected: '' }), '403', 'respond() is behind the rules too')
  t.ok(lines.some((l) => l.level === 'error' && l.code === 'PROXYCTL_ACCESS_DENIED' && l.client === '::1' && l.request === 'GET /open HTTP/1.1'), 'a denial is an error line with the client and the request, as nginx\'s "access forbidden by rule"')
})
