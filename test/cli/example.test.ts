// The bundled example (`pnpm example`: examples/hello.config.ts through the CLI), on free ports
// instead of 8080 and 8443: http and https (HTTP/2 and HTTP/1.1 by ALPN) on 127.0.0.1 and [::1],
// with the self-signed localhost certificate it makes on first use and keeps in the cache folder.
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { freePort } from '../helpers/failure.js'
import { cacheHome, request, ROOT, runCli, startCli, targetOf, tmpDir } from '../helpers/proxy.js'
import { tlsGet } from '../helpers/tls.js'

const EXAMPLE = path.join(ROOT, 'examples', 'hello.config.ts')
const SAN = 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1'

t.test('examples/hello.config.ts serves http and https (h2 and HTTP/1.1) on 127.0.0.1 and [::1] with a generated certificate', async (t) => {
  const cache = cacheHome(t)
  const dir = tmpDir(t, 'proxyctl-example-')
  const [http, https] = [await freePort(), await freePort()]
  const source = fs.readFileSync(EXAMPLE, 'utf8')
  const moved = source.replaceAll(':8080\'', `:${http}'`).replaceAll(':8443\'', `:${https}'`)
  t.equal(moved.split(`:${https}'`).length - 1, 2, 'the example lists 8443 twice (IPv4 and IPv6)')
  t.equal(moved.split(`:${http}'`).length - 1, 2, 'and 8080 twice')
  const config = path.join(dir, 'hello.config.ts')
  fs.writeFileSync(config, moved)

  const run = await startCli(t, ['--config', config], { expectListeners: 4 })
  t.same(run.urls.slice().sort(), [`http://127.0.0.1:${http}`, `http://[::1]:${http}`, `https://127.0.0.1:${https}`, `https://[::1]:${https}`].sort(), 'four listeners')
  const hello = 'hello from proxyctl: GET / (server "localhost", location "/")\n'
  for (const host of ['127.0.0.1', '[::1]']) {
    const res = await request(targetOf(`http://${host}:${http}`), { path: '/' })
    t.same([res.status, res.body], [200, hello], `http on ${host}`)
  }
  const table: Array<[host: string, offer: string, rule: string]> = [
    ['127.0.0.1', 'h2', 'https on 127.0.0.1 speaks HTTP/2 by ALPN'],
    ['127.0.0.1', 'http/1.1', 'https on 127.0.0.1 speaks HTTP/1.1 to a client that offers only it'],
    ['::1', 'h2', 'https on [::1] speaks HTTP/2 by ALPN'],
    ['::1', 'http/1.1', 'https on [::1] speaks HTTP/1.1']
  ]
  for (const [host, offer, rule] of table) {
    t.same(await tlsGet(https, offer, host), { alpn: offer, cn: 'localhost', san: SAN, status: 200, body: hello }, rule)
  }
  t.equal(await run.stop('SIGTERM'), 0, 'Ctrl-C (SIGTERM) stops it cleanly')

  // A second start serves the same certificate (a browser's exception holds).
  const kept = fs.readFileSync(path.join(cache, 'proxyctl', 'self-signed-localhost_127.0.0.1_--1.pem'), 'utf8')
  const again = await startCli(t, ['--config', config], { expectListeners: 4 })
  t.equal(await again.stop('SIGTERM'), 0)
  t.equal(fs.readFileSync(path.join(cache, 'proxyctl', 'self-signed-localhost_127.0.0.1_--1.pem'), 'utf8'), kept, 'a second start keeps the certificate')
})

t.test('selfSignedCertificate() where it cannot keep the certificate: check exits 1 naming the config file and the folder, no stack', async (t) => {
  const dir = tmpDir(t, 'proxyctl-example-')
  // A folder under a file: mkdir fails (ENOTDIR) whoever runs the test.
  fs.writeFileSync(path.join(dir, 'a-file'), '')
  const config = path.join(dir, 'proxy.config.ts')
  fs.writeFileSync(config, `import { defineConfig, respond, selfSignedCertificate } from 'proxyctl'
const https = await selfSignedCertificate({ dir: ${JSON.stringify(path.join(dir, 'a-file', 'certs'))} })
export default defineConfig({ servers: [{ listen: { address: '127.0.0.1:0', https }, locations: { '/': respond(200) } }] })
`)
  const run = await runCli(['check', '--config', config])
  t.equal(run.code, 1, 'exit 1')
  t.equal(run.stderr, `proxyctl: ${config}: cannot load config: selfSignedCertificate: cannot keep the certificate in ${path.join(dir, 'a-file', 'certs')}: ENOTDIR: not a directory, mkdir '${path.join(dir, 'a-file', 'certs')}'\n`, 'one line: the file, the folder, why')
})
