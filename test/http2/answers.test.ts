/**
 * HTTP/2 through a real proxyctl (fixtures/h2-cases.ts, the table h2-nginx-compare.ts checks
 * against nginx): every case over h2 (TLS, ALPN) and h2c (prior knowledge) answers as the same
 * request over HTTP/1.1 does (same status, headers but HTTP/1.1's hop-by-hop ones, body, and the
 * same request at the upstream); both listeners still speak HTTP/1.1; curl agrees.
 */
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { freePort } from '../helpers/failure.js'
import { startConfig, tmpDir } from '../helpers/proxy.js'
import { h2Cases, makeSite, playCase, proxyctlConfig, type H2Case } from './fixtures/h2-cases.js'

t.test('each case answers over h2 and h2c as over HTTP/1.1', async (t) => {
  const dir = tmpDir(t)
  const port = await freePort()
  const site = await makeSite(t, dir, await freePort())
  const plain = await freePort()
  // Two consecutive free ports are not guaranteed: the config takes `port` and `port + 1`.
  const config = proxyctlConfig(site, port)
  const servers = config.servers ?? []
  const listen = servers[0]?.listen as Array<{ address: string }>
  ;(listen[1] as { address: string }).address = `127.0.0.1:${plain}`
  await startConfig(t, config)
  // $server_protocol is the one thing that differs, by design (nginx's too).
  const asH2 = (lines: string[], c: H2Case): string[] => c.namesProtocol === true ? lines.map((l) => l.replace('HTTP/1.1', 'HTTP/2.0')) : lines
  for (const c of h2Cases) {
    const https = asH2(await playCase(site, port, c, 'https'), c)
    t.same(await playCase(site, port, c, 'h2'), https, `h2 as HTTP/1.1 over TLS: ${c.name}`)
    const http = asH2(await playCase(site, plain, c, 'http'), c)
    t.same(await playCase(site, plain, c, 'h2c'), http, `h2c as HTTP/1.1: ${c.name}`)
  }
})

const hasCurl = (() => { try { return execFileSync('curl', ['-V'], { encoding: 'utf8' }).includes('HTTP2') } catch { return false } })()

t.test('curl --http2 negotiates h2 by ALPN, --http2-prior-knowledge speaks h2c, and HTTP/1.1 still works on both', { skip: hasCurl ? false : 'curl with HTTP/2 is not installed' }, async (t) => {
  const dir = tmpDir(t)
  const port = await freePort()
  const plain = await freePort()
  const site = await makeSite(t, dir, await freePort())
  const config = proxyctlConfig(site, port)
  ;((config.servers?.[0]?.listen as Array<{ address: string }>)[1] as { address: string }).address = `127.0.0.1:${plain}`
  await startConfig(t, config)
  const ca = path.join(dir, 'ca.pem')
  fs.writeFileSync(ca, site.ca)
  // Not execFileSync: the proxy answers from this process.
  const curl = async (args: string[]): Promise<string> => (await promisify(execFile)('curl', ['-s', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', ...args], { encoding: 'utf8' })).stdout
  const table: Array<[string[], string, string]> = [
    [['--http2', '--cacert', ca, `https://localhost:${port}/a.txt`], '2 200', 'TLS with ALPN: h2'],
    [['--http1.1', '--cacert', ca, `https://localhost:${port}/a.txt`], '1.1 200', 'TLS, HTTP/1.1 only offered: HTTP/1.1'],
    [['--http2-prior-knowledge', `http://127.0.0.1:${plain}/a.txt`], '2 200', 'plain with the preface: h2c'],
    [['--http1.1', `http://127.0.0.1:${plain}/a.txt`], '1.1 200', 'plain HTTP/1.1 on the h2c listener'],
    [['--http2-prior-knowledge', `http://127.0.0.1:${plain}/nope`], '2 404', 'an error page over h2c']
  ]
  for (const [args, want, name] of table) t.equal(await curl(args), want, name)
})
