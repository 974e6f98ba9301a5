/** nginx's map (fixtures/map-cases.ts) through a real proxyctl. */
import t from 'tap'
import { freePort } from '../helpers/failure.js'
import { startConfig } from '../helpers/proxy.js'
import { mapCases, playMapCase, proxyctlMaps } from './fixtures/map-cases.js'

t.test('maps compute variables as nginx\'s map does', async (t) => {
  const port = await freePort()
  await startConfig(t, proxyctlMaps(port))
  for (const c of mapCases) t.equal(await playMapCase(port, c), c.expected, c.name)
})
