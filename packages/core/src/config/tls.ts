/**
 * TLS settings as the config gives them, read and checked at load: a listen entry's `https`
 * (nginx's ssl_certificate, ssl_certificate_key, ssl_protocols, ssl_ciphers) and an upstream's
 * `tls` (proxy_ssl_verify, proxy_ssl_trusted_certificate, proxy_ssl_name,
 * proxy_ssl_certificate, proxy_ssl_certificate_key). Files are read now, relative to the config's
 * folder, and every certificate is tried with its key, so a missing file or a mismatch is a
 * config error with its key path, never a failure at start or on the first request.
 */
import fs from 'node:fs'
import { isIP } from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import { ConfigError } from '../errors.js'

/** PEM contents (a string or Buffer), or the path of a PEM file. */
export type PemSource = string | Buffer

/** nginx's ssl_protocols names. */
export type TlsProtocol = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'

/** A listen entry's TLS, for the server that lists it (its certificate is chosen by SNI). */
export interface ListenTlsConfig {
  /** ssl_certificate: the certificate chain (leaf first). With `key`; or use `certificates`. */
  cert?: PemSource
  /** ssl_certificate_key. */
  key?: PemSource
  /**
   * Several certificates for one server, each with its key (nginx's repeated ssl_certificate),
   * e.g. an RSA one and an ECDSA one: each client gets the one its hello supports.
   */
  certificates?: Array<{ cert: PemSource, key: PemSource }>
  /** Extra CA certificates the server may send to complete its chain. */
  ca?: PemSource
  /** ssl_protocols. Default `['TLSv1.2', 'TLSv1.3']`. Must be a contiguous range. */
  protocols?: TlsProtocol[]
  /** ssl_ciphers, OpenSSL's cipher list for TLS 1.2 and below. Default Node's (`tls.DEFAULT_CIPHERS`). */
  ciphers?: string
}

/** An upstream's TLS (`https://` targets). */
export interface UpstreamTlsConfig {
  /** Verify the upstream's certificate and name (proxy_ssl_verify). Default true: nginx's is off. */
  verify?: boolean
  /** CA certificates trusted for the upstream instead of the system's (proxy_ssl_trusted_certificate). */
  ca?: PemSource
  /** The name sent in SNI and checked against the certificate (proxy_ssl_name). Default the target's host. */
  serverName?: string
  /** A client certificate for upstreams that ask for one (proxy_ssl_certificate). With `key`. */
  cert?: PemSource
  /** Its key (proxy_ssl_certificate_key). */
  key?: PemSource
}

/** A server's TLS on one address, read: what a SecureContext is made from. */
export interface ResolvedServerTls {
  /** Each certificate chain with its key (one per key type). */
  readonly certificates: ReadonlyArray<{ cert: string | Buffer, key: string | Buffer }>
  readonly ca: string | Buffer | undefined
  readonly minVersion: tls.SecureVersion
  readonly maxVersion: tls.SecureVersion
  readonly ciphers: string | undefined
  /** The names as configured, for `check`. */
  readonly protocols: readonly TlsProtocol[]
}

/** An upstream's TLS, read. */
export interface ResolvedUpstreamTls {
  readonly verify: boolean
  readonly ca: string | Buffer | undefined
  readonly serverName: string | undefined
  readonly cert: string | Buffer | undefined
  readonly key: string | Buffer | undefined
}

export const TLS_PROTOCOLS: readonly TlsProtocol[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']
/** nginx's default since 1.23.4 (Debian's 1.22 still lists TLSv1 and TLSv1.1). */
export const DEFAULT_TLS_PROTOCOLS: readonly TlsProtocol[] = ['TLSv1.2', 'TLSv1.3']

/** PEM contents as given, or the file read (relative to `baseDir`); undefined after an error. */
export function readPem (v: PemSource, baseDir: string, keyPath: string, errors: ConfigError[]): string | Buffer | undefined {
  if (Buffer.isBuffer(v) || v.includes('-----BEGIN')) return v
  const file = path.resolve(baseDir, v)
  try { return fs.readFileSync(file) } catch (err) {
    errors.push(new ConfigError(keyPath, `cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`))
    return undefined
  }
}

/** Tries a certificate with its key; a config error at `keyPath` when they do not go together. */
function checkPair (cert: string | Buffer, key: string | Buffer, keyPath: string, errors: ConfigError[]): boolean {
  try {
    tls.createSecureContext({ cert, key })
    return true
  } catch (err) {
    const why = (err as Error).message
    errors.push(new ConfigError(keyPath, /key values mismatch/.test(why) ? `the key does not match the certificate (${why})` : `cannot use the certificate and key (${why})`))
    return false
  }
}

/** A listen entry's `https`, read and checked; undefined after an error (pushed to `errors`). */
export function loadListenTls (https: ListenTlsConfig, baseDir: string, keyPath: string, errors: ConfigError[]): ResolvedServerTls | undefined {
  const before = errors.length
  const pairs: Array<{ cert: PemSource, key: PemSource, at: string }> = []
  if (https.certificates !== undefined) {
    if (https.cert !== undefined || https.key !== undefined) errors.push(new ConfigError(keyPath, 'give either cert and key, or certificates, not both'))
    https.certificates.forEach((c, i) => pairs.push({ ...c, at: `${keyPath}.certificates[${i}]` }))
    if (pairs.length === 0) errors.push(new ConfigError(`${keyPath}.certificates`, 'at least one { cert, key } is needed'))
  } else if (https.cert === undefined || https.key === undefined) {
    errors.push(new ConfigError(keyPath, `${https.cert === undefined ? 'cert' : 'key'} is missing (give cert and key, or certificates: [{ cert, key }, ...])`))
  } else {
    pairs.push({ cert: https.cert, key: https.key, at: keyPath })
  }
  const certificates: Array<{ cert: string | Buffer, key: string | Buffer }> = []
  for (const p of pairs) {
    const cert = readPem(p.cert, baseDir, `${p.at}.cert`, errors)
    const key = readPem(p.key, baseDir, `${p.at}.key`, errors)
    if (cert !== undefined && key !== undefined && checkPair(cert, key, p.at, errors)) certificates.push({ cert, key })
  }
  const ca = https.ca === undefined ? undefined : readPem(https.ca, baseDir, `${keyPath}.ca`, errors)
  const protocols = https.protocols ?? DEFAULT_TLS_PROTOCOLS
  const range = protocolRange(protocols, `${keyPath}.protocols`, errors)
  if (https.ciphers !== undefined) {
    try { tls.createSecureContext({ ciphers: https.ciphers }) } catch (err) {
      errors.push(new ConfigError(`${keyPath}.ciphers`, `invalid cipher list "${https.ciphers}" (${(err as Error).message})`))
    }
  }
  if (errors.length > before || range === undefined) return undefined
  return { certificates, ca, ...range, ciphers: https.ciphers, protocols }
}

/** `protocols` as Node's min and max: a set with a gap (TLSv1 and TLSv1.2 only) cannot be served. */
function protocolRange (protocols: readonly TlsProtocol[], keyPath: string, errors: ConfigError[]): { minVersion: tls.SecureVersion, maxVersion: tls.SecureVersion } | undefined {
  if (protocols.length === 0) { errors.push(new ConfigError(keyPath, 'at least one protocol is needed')); return undefined }
  const idx = protocols.map((p) => TLS_PROTOCOLS.indexOf(p)).sort((a, b) => a - b)
  const lo = idx[0] as number
  const hi = idx[idx.length - 1] as number
  const unique = new Set(idx)
  if (unique.size !== hi - lo + 1) {
    errors.push(new ConfigError(keyPath, `the protocols must be a contiguous range of ${TLS_PROTOCOLS.join(', ')} (Node sets a minimum and a maximum version)`))
    return undefined
  }
  return { minVersion: TLS_PROTOCOLS[lo] as tls.SecureVersion, maxVersion: TLS_PROTOCOLS[hi] as tls.SecureVersion }
}

/** An upstream's (or a proxy target's) `tls`, read and checked; undefined when absent or after an error. */
export function loadUpstreamTls (config: UpstreamTlsConfig | undefined, baseDir: string, keyPath: string, errors: ConfigError[]): ResolvedUpstreamTls {
  const c = config ?? {}
  if ((c.cert === undefined) !== (c.key === undefined)) {
    errors.push(new ConfigError(keyPath, `${c.cert === undefined ? 'cert' : 'key'} is missing: a client certificate needs both cert and key`))
  }
  const ca = c.ca === undefined ? undefined : readPem(c.ca, baseDir, `${keyPath}.ca`, errors)
  const cert = c.cert === undefined ? undefined : readPem(c.cert, baseDir, `${keyPath}.cert`, errors)
  const key = c.key === undefined ? undefined : readPem(c.key, baseDir, `${keyPath}.key`, errors)
  if (cert !== undefined && key !== undefined) checkPair(cert, key, keyPath, errors)
  if (ca !== undefined) {
    try { tls.createSecureContext({ ca }) } catch (err) { errors.push(new ConfigError(`${keyPath}.ca`, `cannot use the CA certificates (${(err as Error).message})`)) }
  }
  return { verify: c.verify ?? true, ca, serverName: c.serverName, cert, key }
}

/** The options of a TLS connection to an upstream (tls.connect, undici's connect). */
export function upstreamTlsOptions (t: ResolvedUpstreamTls, host: string | undefined): tls.ConnectionOptions {
  const name = t.serverName ?? (host === undefined || isIP(host) !== 0 ? undefined : host)
  return {
    rejectUnauthorized: t.verify,
    // SNI carries names only; an IP target is checked against the certificate's IP addresses.
    ...(name !== undefined && name !== '' ? { servername: name } : {}),
    ...(t.ca === undefined ? {} : { ca: t.ca }),
    ...(t.cert === undefined ? {} : { cert: t.cert }),
    ...(t.key === undefined ? {} : { key: t.key })
  }
}
