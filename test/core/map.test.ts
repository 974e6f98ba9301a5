/** nginx's map (fixtures/map-cases.ts) through a real proxyctl. */
import t from 'tap'
import { respond } from 'proxyctl'
import { freePort } from '../helpers/failure.js'
import { startConfig } from '../helpers/proxy.js'
import { BODY, mapCases, maps, playMapCase } from './fixtures/map-cases.js'

t.test('maps compute variables as nginx\'s map does', async (t) => {
  const port = await freePort()
  await startConfig(t, { maps, servers: [{ listen: `127.0.0.1:${port}`, locations: { '/': respond(200, `${BODY}\n`) } }] })
  for (const c of mapCases) t.equal(await playMapCase(port, c), c.expected, c.name)
})
