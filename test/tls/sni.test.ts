/**
 * Server certificates by SNI (fixtures/sni-cases.ts) through a real proxyctl: the same table
 * fixtures/sni-nginx-compare.ts checks against nginx.
 */
import t from 'tap'
import { freePort } from '../helpers/failure.js'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { makeCertificates, playSniCase, proxyctlServers, sniCases, type Address } from './fixtures/sni-cases.js'

t.test('the certificate by SNI, and the answer over it, as nginx', async (t) => {
  const certs = makeCertificates(tmpDir(t))
  const ports: Record<Address, number> = { main: await freePort(), other: await freePort(), only12: await freePort() }
  await startConfig(t, { servers: proxyctlServers(ports, certs) })
  for (const c of sniCases) t.equal(await playSniCase(ports[c.address], c), c.expected, c.name)
})
