/**
 * TLS to upstreams: an `https://` target's certificate is verified by default (nginx's
 * proxy_ssl_verify is off: a deliberate difference), trusted through `tls.ca` or not checked
 * with `verify: false`; `serverName` is the SNI sent and the name checked; `cert` and `key`
 * answer an upstream that asks for a client certificate. A refused handshake is a 502 with an
 * error line naming the upstream, the server and the reason.
 */
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import t from 'tap'
import { proxy } from 'proxyctl'
import type { UpstreamTlsConfig } from 'proxyctl'
import { startLogged } from '../helpers/failure.js'
import { tmpDir } from '../helpers/proxy.js'
import { exchange } from '../helpers/raw-http.js'
import { testCa, type Pem } from '../helpers/tls.js'
import type { Teardown } from '../helpers/lifecycle.js'

/** An https upstream answering `sni=NAME client=CN` (the client certificate's CN, or '-'). */
async function httpsUpstream (t: Teardown, cert: Pem, opts: { requireClientCa?: string } = {}): Promise<string> {
  const server = https.createServer({
    cert: cert.cert,
    key: cert.key,
    ...(opts.requireClientCa === undefined ? {} : { requestCert: true, rejectUnauthorized: true, ca: opts.requireClientCa })
  }, (req, res) => {
    const sock = req.socket as TLSSocket
    const peer = sock.getPeerCertificate()
    const cn = typeof peer?.subject?.CN === 'string' ? peer.subject.CN : '-'
    res.end(`sni=${String(sock.servername)} client=${cn}`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('an https upstream\'s certificate, verified as configured', async (t) => {
  const ca = testCa(tmpDir(t))
  const selfSigned = ca.selfSigned('self', ['127.0.0.1', 'localhost'])
  const named = ca.leaf('up', ['up.test'])
  const client = ca.leaf('client', ['proxyctl client'], { client: true, cn: 'proxyctl client' })
  const upSelf = await httpsUpstream(t, selfSigned)
  const upNamed = await httpsUpstream(t, named)
  const upMtls = await httpsUpstream(t, named, { requireClientCa: ca.cert })

  interface Case { rule: string, target: string, tls?: UpstreamTlsConfig, status: number, body?: string, reason?: RegExp, code?: string }
  const cases: Case[] = [
    { rule: 'a self-signed certificate is refused by default', target: `https://${upSelf}`, status: 502, reason: /upstream SSL certificate verify error: \(DEPTH_ZERO_SELF_SIGNED_CERT/ },
    { rule: 'tls.ca trusting it lets it through', target: `https://${upSelf}`, tls: { ca: selfSigned.certFile }, status: 200, body: 'sni=false client=-' },
    { rule: 'verify: false does not check it (nginx\'s default)', target: `https://${upSelf}`, tls: { verify: false }, status: 200, body: 'sni=false client=-' },
    { rule: 'a trusted certificate for another name is refused', target: `https://${upNamed}`, tls: { ca: ca.cert }, status: 502, reason: /ERR_TLS_CERT_ALTNAME_INVALID/ },
    { rule: 'serverName is sent in SNI and is the name checked', target: `https://${upNamed}`, tls: { ca: ca.cert, serverName: 'up.test' }, status: 200, body: 'sni=up.test client=-' },
    // TLS 1.3 refuses the missing certificate after the proxy's side of the handshake is done:
    // undici sees the connection closed once the request is sent.
    { rule: 'an upstream that requires a client certificate refuses a proxy without one', target: `https://${upMtls}`, tls: { ca: ca.cert, serverName: 'up.test' }, status: 502, code: 'PROXYCTL_UPSTREAM_RESET', reason: /upstream closed or reset the connection/ },
    { rule: 'cert and key answer it (mTLS)', target: `https://${upMtls}`, tls: { ca: ca.cert, serverName: 'up.test', cert: client.certFile, key: client.keyFile }, status: 200, body: 'sni=up.test client=proxyctl client' }
  ]
  const locations: Record<string, ReturnType<typeof proxy>> = {}
  cases.forEach((c, i) => { locations[`/c${i}/`] = proxy(`${c.target}/`, c.tls === undefined ? {} : { tls: c.tls }) })
  const p = await startLogged(t, { servers: [{ listen: '127.0.0.1:0', locations }] })
  for (const [i, c] of cases.entries()) {
    const before = p.errors().length
    const r = await exchange({ port: p.port }, `/c${i}/x`, { host: 'localhost' })
    t.equal(r.status, c.status, `${c.rule}: status`)
    if (c.body !== undefined) t.equal(r.body, c.body, `${c.rule}: what the upstream saw`)
    if (c.reason !== undefined) {
      const code = c.code ?? 'PROXYCTL_UPSTREAM_TLS_FAILED'
      const line = p.errors().slice(before).find((l) => l.code === code)
      t.ok(line !== undefined, `${c.rule}: an error line with code ${code}`)
      t.match(line, { upstream: c.target.slice('https://'.length), server: c.target.slice('https://'.length), reason: c.reason }, `${c.rule}: the line names upstream, server and reason`)
    }
  }
})

t.test('a named upstream\'s tls', async (t) => {
  const ca = testCa(tmpDir(t))
  const named = ca.leaf('up', ['up.test'])
  const client = ca.leaf('client', ['proxyctl client'], { client: true, cn: 'proxyctl client' })
  const up = await httpsUpstream(t, named, { requireClientCa: ca.cert })
  const p = await startLogged(t, {
    upstreams: {
      trusted: { servers: [up], tls: { ca: ca.certFile, serverName: 'up.test', cert: client.cert, key: client.key } },
      untrusted: { servers: [up] }
    },
    servers: [{ listen: '127.0.0.1:0', locations: { '/t/': proxy('https://trusted/'), '/u/': proxy('https://untrusted/') } }]
  })
  const ok = await exchange({ port: p.port }, '/t/x', { host: 'localhost' })
  t.equal(`${ok.status} ${ok.body}`, '200 sni=up.test client=proxyctl client', 'ca, serverName and a client certificate from the upstream\'s tls')
  const refused = await exchange({ port: p.port }, '/u/x', { host: 'localhost' })
  t.equal(refused.status, 502, 'without tls, the CA is not trusted: 502')
  t.match(p.errors().find((l) => l.code === 'PROXYCTL_UPSTREAM_TLS_FAILED'), { upstream: 'untrusted', server: up, reason: /certificate verify error: \(SELF_SIGNED_CERT_IN_CHAIN/ }, 'logged with the upstream\'s name')
})
