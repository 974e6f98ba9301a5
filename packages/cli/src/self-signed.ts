import { X509Certificate, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface SelfSignedOptions {
  /** The names the certificate is for: DNS names or IP addresses; the first is its CN. Default localhost, 127.0.0.1, ::1. */
  names?: string[]
  /** Where it is kept. Default `$XDG_CACHE_HOME/proxyctl`, else `~/.cache/proxyctl`. */
  dir?: string
}

/** PEM contents, as a listen entry's `https` takes them. */
export interface SelfSignedCertificate { cert: string, key: string }

const DEFAULT_NAMES = ['localhost', '127.0.0.1', '::1']
const DAY = 86_400_000
/** Valid this long; remade when less than a day is left. */
const VALID_DAYS = 30

const cacheDir = (): string => path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'proxyctl')
const isIp = (name: string): boolean => /^[\d.]+$/.test(name) || name.includes(':')

/** The kept certificate, or undefined when it is missing, unreadable or expires within a day. */
function kept (file: string): SelfSignedCertificate | undefined {
  let pem: string
  try { pem = fs.readFileSync(file, 'utf8') } catch { return undefined }
  const key = /-----BEGIN PRIVATE KEY-----[^]*?-----END PRIVATE KEY-----\n?/.exec(pem)?.[0]
  const cert = /-----BEGIN CERTIFICATE-----[^]*?-----END CERTIFICATE-----\n?/.exec(pem)?.[0]
  if (key === undefined || cert === undefined) return undefined
  try {
    if (new Date(new X509Certificate(cert).validTo).getTime() - Date.now() < DAY) return undefined
  } catch { return undefined }
  return { cert, key }
}

/**
 * A self-signed certificate for trying https and HTTP/2 on a development machine (never for
 * production: no browser or client trusts it without being told to). Made once, on first use, and
 * kept with its key in one file per set of names, so `check`, `start` and every worker serve the
 * same one and a browser's exception holds across restarts; remade when it nears its end.
 * ECDSA P-256 (quick to make, every TLS client takes it), with the names as subjectAltName.
 */
export async function selfSignedCertificate (options: SelfSignedOptions = {}): Promise<SelfSignedCertificate> {
  const names = options.names ?? DEFAULT_NAMES
  const dir = options.dir ?? cacheDir()
  const file = path.join(dir, `self-signed-${names.join('_').replace(/[^\w.-]/g, '-')}.pem`)
  const have = kept(file)
  if (have !== undefined) return have
  // Loaded here, not with the package: only configs that ask for one pay for it.
  const { generate } = await import('selfsigned')
  const now = Date.now()
  const pems = await generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: new Date(now - DAY),
    notAfterDate: new Date(now + VALID_DAYS * DAY),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names.map((n) => isIp(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n }) }
    ]
  })
  try {
    return keep(file, dir, { cert: pems.cert, key: pems.private })
  } catch (err) {
    // The config fails to load with this line (file and message, exit 1): say where and why.
    throw new Error(`selfSignedCertificate: cannot keep the certificate in ${dir}: ${(err as Error).message}`, { cause: err })
  }
}

/** Writes `made` to `file` unless another process was first; what is kept there. */
function keep (file: string, dir: string, made: SelfSignedCertificate): SelfSignedCertificate {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  // Written aside, then linked into place only if absent: workers loading the config at once
  // agree on the first one made (a stale file is replaced whole by rename).
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  fs.writeFileSync(tmp, made.key + made.cert, { mode: 0o600 })
  try {
    fs.linkSync(tmp, file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    const other = kept(file)
    if (other !== undefined) { fs.rmSync(tmp, { force: true }); return other }
    fs.renameSync(tmp, file)
    return made
  }
  fs.rmSync(tmp, { force: true })
  return made
}
