// Starts a real proxyctl with the plugin in front of a real upstream, both on 127.0.0.1.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { proxy, resolveConfig, startProxy } from 'proxyctl'
import t from 'tap'
import __PLUGIN__ from '../src/index.js'

t.test('on its location the plugin adds a header upstream and one to the response', async (t) => {
  // The upstream answers with the header the plugin sent it.
  const upstream = http.createServer((req, res) => { res.end(`location ${req.headers['x-proxyctl-location']}`) })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  const app = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

  const running = await startProxy(resolveConfig({
    servers: [{
      listen: '127.0.0.1:0',
      locations: {
        '/api/': { plugins: [[__PLUGIN__, { responseHeader: 'x-took' }]], handler: proxy(app) },
        '/': proxy(app)
      }
    }]
  }), { logger: false })
  t.teardown(async () => {
    await running.close(0)
    upstream.closeAllConnections()
    upstream.close()
  })
  const url = running.listeners[0].url

  const res = await fetch(`${url}/api/users`)
  t.equal(await res.text(), 'location /api/', 'the upstream got the request header')
  t.match(res.headers.get('x-took'), /^\d+\.\d$/, 'the client got the response header, as the options named it')

  const other = await fetch(`${url}/other`)
  t.equal(await other.text(), 'location undefined', 'a location without the plugin sends no header upstream')
  t.equal(other.headers.get('x-took'), null, 'nor to the client')
})
