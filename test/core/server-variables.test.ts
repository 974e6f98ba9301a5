/**
 * Server and request-line variables (fixtures/server-variables-cases.ts) through a real proxyctl:
 * the same table fixtures/server-variables-nginx-compare.ts checks against nginx.
 */
import t from 'tap'
import { freePort } from '../helpers/failure.js'
import { startConfig } from '../helpers/proxy.js'
import { playVariableCase, proxyctlServers, variableCases, type Address } from './fixtures/server-variables-cases.js'

t.test('server and request-line variables, as nginx sets them', async (t) => {
  const ports: Record<Address, number> = { named: await freePort(), wild: await freePort(), under: await freePort() }
  await startConfig(t, proxyctlServers(ports))
  for (const c of variableCases) t.equal(await playVariableCase(ports[c.address], c), c.expected, c.name)
})
