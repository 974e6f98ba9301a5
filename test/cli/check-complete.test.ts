/**
 * `proxyctl check` finds everything `start` would, as `nginx -t` does: TLS files that cannot be
 * read or do not match, upstream addresses blamed on their upstream, hostnames that do not
 * resolve (nginx: "host not found in upstream"); every problem of a stage at once, each with the
 * file and key path. `start` refuses the same configs with the same lines.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import t from 'tap'
import { configDir, runCli, startCli, writeConfig } from '../helpers/proxy.js'

const head = "import { defineConfig, proxy, respond } from 'proxyctl'\n"

/** A self-signed certificate and key in `dir`, and a second key that does not match. */
function certificates (dir: string): void {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
  execFileSync('openssl', ['genrsa', '-out', path.join(dir, 'other-key.pem'), '2048'], { stdio: 'ignore' })
}

const cases = [
  {
    rule: 'a certificate file that does not exist names its key',
    body: "servers: [{ listen: [{ address: '127.0.0.1:0', https: { cert: './missing.pem', key: './key.pem' } }] }]",
    expect: [/: servers\[0\]\.listen\[0\]\.https\.cert: cannot read ".*missing\.pem" \(ENOENT\)$/m]
  },
  {
    rule: 'a key that does not match its certificate',
    body: "servers: [{ listen: [{ address: '127.0.0.1:0', https: { cert: './cert.pem', key: './other-key.pem' } }] }]",
    expect: [/: servers\[0\]\.listen\[0\]\.https: the key does not match the certificate \(.*key values mismatch\)$/m]
  },
  {
    rule: 'each of several certificates is read and matched to its key, each with its key path',
    body: "servers: [{ listen: [{ address: '127.0.0.1:0', https: { certificates: [{ cert: './cert.pem', key: './key.pem' }, { cert: './cert.pem', key: './other-key.pem' }, { cert: './gone.pem', key: './key.pem' }] } }] }]",
    expect: [/: servers\[0\]\.listen\[0\]\.https\.certificates\[1\]: the key does not match the certificate/m, /: servers\[0\]\.listen\[0\]\.https\.certificates\[2\]\.cert: cannot read ".*gone\.pem" \(ENOENT\)$/m]
  },
  {
    rule: 'the certificates of every server sharing a TLS address are checked',
    body: "servers: [{ listen: { address: '127.0.0.1:0', https: { cert: './cert.pem', key: './key.pem' } } }, { serverName: 'b', listen: { address: '127.0.0.1:0', https: { cert: './cert.pem', key: './other-key.pem' } } }]",
    expect: [/: servers\[1\]\.listen\.https: the key does not match the certificate/m]
  },
  {
    rule: 'a TLS address whose default server has no certificate (nginx: no "ssl_certificate" is defined)',
    body: "servers: [{ listen: '127.0.0.1:0' }, { serverName: 'b', listen: { address: '127.0.0.1:0', https: { cert: './cert.pem', key: './key.pem' } } }]",
    expect: [/: servers\[0\]\.listen: 127\.0\.0\.1:0 is TLS \(https in another server\) but its default server has no certificate there/m]
  },
  {
    rule: 'protocols with a gap, and an unknown cipher list',
    body: "servers: [{ listen: { address: '127.0.0.1:0', https: { cert: './cert.pem', key: './key.pem', protocols: ['TLSv1.1', 'TLSv1.3'], ciphers: 'NO-SUCH-CIPHER' } } }]",
    expect: [/: servers\[0\]\.listen\.https\.protocols: the protocols must be a contiguous range/m, /: servers\[0\]\.listen\.https\.ciphers: invalid cipher list "NO-SUCH-CIPHER"/m]
  },
  {
    rule: 'an upstream\'s tls: a missing CA file, a client key that does not match',
    body: "upstreams: { app: { servers: ['127.0.0.1:9'], tls: { ca: './no-ca.pem', cert: './cert.pem', key: './other-key.pem' } } }, servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('https://app') } }]",
    expect: [/: upstreams\.app\.tls\.ca: cannot read ".*no-ca\.pem" \(ENOENT\)$/m, /: upstreams\.app\.tls: the key does not match the certificate/m]
  },
  {
    rule: 'a proxy()\'s own tls: a client certificate without its key',
    body: "servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('https://127.0.0.1:9', { tls: { cert: './cert.pem' } }) } }]",
    expect: [/: servers\[0\]\.locations\["\/"\]\.tls: key is missing: a client certificate needs both cert and key$/m]
  },
  {
    rule: 'a bad upstream address is the upstream\'s, not the location\'s',
    body: "upstreams: { app: { servers: ['127.0.0.1:99999'] } }, servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('http://app') } }]",
    expect: [/: upstreams\.app\.servers\[0\]: port out of range in "127\.0\.0\.1:99999"$/m]
  },
  {
    rule: 'every problem of a stage at once',
    body: "upstreams: { app: { servers: ['127.0.0.1:99999', { address: 'unix:app.sock' }] } }, servers: [{ listen: [{ address: '127.0.0.1:0', https: { cert: './nope.pem', key: './key.pem' } }], locations: { '/': proxy('http://app') } }]",
    expect: [/: upstreams\.app\.servers\[0\]: port out of range/m, /: upstreams\.app\.servers\[1\]\.address: unix socket path must be absolute/m, /: servers\[0\]\.listen\[0\]\.https\.cert: cannot read/m]
  },
  {
    rule: 'an upstream hostname that does not resolve',
    body: "upstreams: { app: { servers: ['no-such-host.invalid:8080'] } }, servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('http://app') } }]",
    expect: [/: upstreams\.app\.servers\[0\]: host not found in upstream "no-such-host\.invalid:8080" \(\w+\)$/m]
  },
  {
    rule: 'a proxy target that is neither an upstream nor a host that resolves',
    body: "servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('http://missing'), '/b': proxy('http://no-such-host.invalid:8080/x/') } }]",
    expect: [/: servers\[0\]\.locations\["\/"\]: host not found in upstream "missing" \(\w+\)$/m, /: servers\[0\]\.locations\["\/b"\]: host not found in upstream "no-such-host\.invalid" \(\w+\)$/m]
  }
]

t.test('check finds what start would, with file and key path; start refuses the same', async (t) => {
  const dir = configDir(t)
  certificates(dir)
  for (const c of cases) {
    const file = writeConfig(dir, `${head}export default defineConfig({ ${c.body} })\n`)
    for (const command of ['check', 'start']) {
      const run = await runCli([command, '--config', file], { cwd: dir })
      t.equal(run.code, 1, `${c.rule}: ${command} exits 1`)
      for (const e of c.expect) t.match(run.stderr, e, `${c.rule}: ${command} says ${e.source}`)
      t.equal(run.stderr.trim().split('\n').length, c.expect.length, `${c.rule}: ${command} says nothing else`)
      t.notMatch(run.stderr, /\n\s+at .+:\d+:\d+/, `${c.rule}: ${command} prints no stack trace`)
    }
  }
})

t.test('certificate and key given as files, relative to the config, serve https', async (t) => {
  const dir = configDir(t)
  certificates(dir)
  const file = writeConfig(dir, `${head}export default defineConfig({ servers: [{ listen: [{ address: '127.0.0.1:0', https: { cert: './cert.pem', key: 'key.pem' } }], locations: { '/': respond(200, 'tls ok') } }] })\n`)
  const check = await runCli(['check', '--config', file], { cwd: '/' })
  t.equal(check.code, 0, 'check passes')
  const run = await startCli(t, ['--config', file], { cwd: '/' })
  const url = run.urls[0] as string
  t.match(url, /^https:/, 'the listener is https')
  const body = await new Promise<string>((resolve, reject) => {
    https.get(url, { rejectUnauthorized: false }, (res) => {
      let b = ''
      res.on('data', (d: Buffer) => { b += d.toString() })
      res.on('end', () => resolve(b))
    }).on('error', reject)
  })
  t.equal(body, 'tls ok', 'answered over TLS with the certificate read from the files')
  t.ok(fs.existsSync(path.join(dir, 'cert.pem')))
})
