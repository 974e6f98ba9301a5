/**
 * Test certificates, made with `openssl` at test time into a folder: one CA, leaf certificates
 * it signed (RSA or ECDSA, for names and wildcards), self-signed ones, and client certificates.
 * Each leaf's subject CN says which it is (`a.test rsa`), so a test reads the peer certificate
 * to see which one a server chose. Also a TLS client that reports what the server presented.
 */
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import http2 from 'node:http2'
import https from 'node:https'
import path from 'node:path'
import tls from 'node:tls'

export interface Pem {
  /** Files, for configs that take paths. */
  certFile: string
  keyFile: string
  /** Contents. */
  cert: string
  key: string
}

export type KeyKind = 'rsa' | 'ecdsa'

const openssl = (dir: string, args: string[]): void => {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

function newKey (dir: string, file: string, kind: KeyKind): void {
  if (kind === 'rsa') openssl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file])
  else openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file])
}

function pem (dir: string, name: string): Pem {
  const certFile = path.join(dir, `${name}.crt`)
  const keyFile = path.join(dir, `${name}.key`)
  return { certFile, keyFile, cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') }
}

/** A folder's certificate authority; `leaf` issues certificates signed by it. */
export interface TestCa extends Pem {
  readonly dir: string
  /**
   * A certificate for `names` (DNS names, or IP addresses), its CN `cn` (default the first name and
   * the key kind), as a server (default) or a client certificate.
   */
  leaf (file: string, names: string[], opts?: { kind?: KeyKind, cn?: string, client?: boolean }): Pem
  /** A self-signed certificate (no CA) for `names`. */
  selfSigned (file: string, names: string[], opts?: { kind?: KeyKind, cn?: string }): Pem
}

const san = (names: string[]): string => names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')

/** A CA in `dir` (created if absent), RSA, valid for a day either side of now. */
export function testCa (dir: string): TestCa {
  fs.mkdirSync(dir, { recursive: true })
  newKey(dir, 'ca.key', 'rsa')
  openssl(dir, ['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '2', '-subj', '/CN=proxyctl test CA', '-out', 'ca.crt',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  const ca = pem(dir, 'ca')
  return {
    ...ca,
    dir,
    leaf (file, names, opts = {}) {
      const kind = opts.kind ?? 'rsa'
      newKey(dir, `${file}.key`, kind)
      const ext = path.join(dir, `${file}.ext`)
      fs.writeFileSync(ext, `subjectAltName=${san(names)}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=${opts.client === true ? 'clientAuth' : 'serverAuth'}\n`)
      openssl(dir, ['req', '-new', '-key', `${file}.key`, '-subj', `/CN=${opts.cn ?? `${names[0] ?? file} ${kind}`}`, '-out', `${file}.csr`])
      openssl(dir, ['x509', '-req', '-in', `${file}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-sha256', '-extfile', ext, '-out', `${file}.crt`])
      return pem(dir, file)
    },
    selfSigned (file, names, opts = {}) {
      const kind = opts.kind ?? 'rsa'
      newKey(dir, `${file}.key`, kind)
      openssl(dir, ['req', '-x509', '-new', '-key', `${file}.key`, '-sha256', '-days', '2', '-subj', `/CN=${opts.cn ?? `${names[0] ?? file} ${kind}`}`,
        '-addext', `subjectAltName=${san(names)}`, '-out', `${file}.crt`])
      return pem(dir, file)
    }
  }
}

/** What a TLS server presented to one client hello. */
export interface Handshake {
  /** The peer certificate's subject CN ('' when the handshake failed). */
  cn: string
  /** `TLSv1.3`, ... ('' when the handshake failed). */
  protocol: string
  /** The negotiated cipher's OpenSSL name. */
  cipher: string
  /** The peer certificate's public key type: 'rsa' or 'ecdsa'. */
  keyKind: string
  /** The handshake error's code when it failed (`ERR_SSL_...`, `ECONNRESET`). */
  error?: string
  /** Whether the session was resumed (with `session`). */
  resumed: boolean
  /** A session to resume with (TLS 1.3 tickets arrive after the handshake). */
  session?: Buffer
}

/**
 * Connects to 127.0.0.1:`port` with `opts` (servername, minVersion, ciphers, sigalgs...), never
 * verifying, and reports the server's certificate; closes the connection.
 */
export function handshake (port: number, opts: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve) => {
    const sock = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts })
    let session: Buffer | undefined
    sock.on('session', (s: Buffer) => { session = s })
    const timer = setTimeout(() => { sock.destroy(); resolve({ cn: '', protocol: '', cipher: '', keyKind: '', error: 'timeout', resumed: false }) }, 5000)
    sock.once('secureConnect', () => {
      const cert = sock.getPeerCertificate()
      const out: Handshake = {
        cn: typeof cert.subject?.CN === 'string' ? cert.subject.CN : '',
        protocol: sock.getProtocol() ?? '',
        cipher: sock.getCipher().name,
        keyKind: cert.asn1Curve !== undefined || cert.nistCurve !== undefined ? 'ecdsa' : 'rsa',
        resumed: sock.isSessionReused(),
        session: undefined
      }
      // A TLS 1.3 ticket comes just after the handshake.
      setTimeout(() => { clearTimeout(timer); sock.end(); resolve({ ...out, ...(session === undefined ? {} : { session }) }) }, 30)
    })
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      sock.destroy()
      resolve({ cn: '', protocol: '', cipher: '', keyKind: '', error: err.code ?? err.message, resumed: false })
    })
  })
}

/** What `tlsGet` saw. */
export interface TlsAnswer { alpn: string | false, cn: string, san: string, status: number, body: string }

/**
 * GET / over TLS to `host`:`port` (default 127.0.0.1) for `localhost`, offering `alpn`, without
 * verifying (for self-signed certificates): the protocol agreed, the certificate's CN and names,
 * the answer.
 */
export async function tlsGet (port: number, alpn: string, host = '127.0.0.1'): Promise<TlsAnswer> {
  const socket = tls.connect({ host, port, servername: 'localhost', ALPNProtocols: [alpn], rejectUnauthorized: false })
  await once(socket, 'secureConnect')
  const cert = socket.getPeerCertificate()
  const seen = { alpn: socket.alpnProtocol ?? false, cn: String(cert.subject.CN), san: cert.subjectaltname ?? '' }
  if (socket.alpnProtocol === 'h2') {
    const session = http2.connect('https://localhost', { createConnection: () => socket })
    try {
      const req = session.request({ ':path': '/' })
      const [headers] = await once(req, 'response') as [http2.IncomingHttpHeaders]
      let body = ''
      for await (const chunk of req) body += String(chunk)
      return { ...seen, status: Number(headers[':status']), body }
    } finally { session.close() }
  }
  return await new Promise<TlsAnswer>((resolve, reject) => {
    const req = https.get({ host, port, path: '/', createConnection: () => socket, headers: { host: 'localhost' } }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => { socket.destroy(); resolve({ ...seen, status: res.statusCode ?? 0, body }) })
    })
    req.on('error', reject)
  })
}
