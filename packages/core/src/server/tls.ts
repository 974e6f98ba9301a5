/**
 * The secure contexts of one TLS address: one per server that has certificates there, chosen by
 * SNI with the address's own server selection (routing/server-select.ts, nginx's name rules),
 * the default server's when the client sends no SNI or a name that selects a server without
 * certificates. Kept apart from the HTTP/1.1 listener so an HTTP/2 listener builds on the same
 * (`createTlsServer`).
 *
 * Several certificates per server (RSA and ECDSA): OpenSSL picks among them by what the client
 * supports, but only in the context a connection starts with, the default server's. Node's SNI
 * switch installs one certificate of the new context (SSL_CTX_get0_certificate), so for another
 * server proxyctl picks itself: each certificate gets its own context, and on addresses where a
 * server other than the default has several, the ClientHello is read before TLS starts (Node
 * replays the bytes: initRead) to see whether the client prefers ECDSA, in the order OpenSSL
 * would weigh: TLS 1.3 signature algorithms, else TLS 1.2 cipher suites.
 */
import crypto from 'node:crypto'
import type net from 'node:net'
import tls from 'node:tls'
import type { ResolvedListen, ResolvedServer } from '../config/model.js'
import type { ResolvedServerTls } from '../config/tls.js'
import { normalizeHost } from '../routing/server-select.js'

type KeyKind = 'rsa' | 'ecdsa' | 'other'
type SniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void

/** A server's contexts: one for all its certificates, and one per key kind when it has several. */
interface ServerContexts {
  readonly all: tls.SecureContext
  readonly byKind: ReadonlyMap<KeyKind, tls.SecureContext> | undefined
}

export interface ListenSecureContexts {
  /** The default server's options: what a client without SNI (or naming no server with certificates) gets. */
  readonly fallback: tls.SecureContextOptions
  /** tls.Server's SNICallback: the context of the server the name selects. */
  readonly SNICallback: SniCallback
  /** Whether connections must have their ClientHello read first (a non-default server with several certificates). */
  readonly readsHello: boolean
}

/** What createSecureContext takes for one server's TLS: every certificate with its key (RSA and ECDSA side by side). */
function contextOptions (t: ResolvedServerTls, only?: { cert: string | Buffer, key: string | Buffer }): tls.SecureContextOptions {
  const certs = only === undefined ? t.certificates : [only]
  return {
    cert: certs.map((c) => c.cert),
    key: certs.map((c) => c.key),
    ...(t.ca === undefined ? {} : { ca: t.ca }),
    minVersion: t.minVersion,
    maxVersion: t.maxVersion,
    ...(t.ciphers === undefined ? {} : { ciphers: t.ciphers })
  }
}

function keyKind (key: string | Buffer): KeyKind {
  const type = crypto.createPrivateKey(key).asymmetricKeyType
  return type === 'ec' ? 'ecdsa' : type === 'rsa' || type === 'rsa-pss' ? 'rsa' : 'other'
}

const kPrefersEcdsa = Symbol('proxyctl.prefersEcdsa')
type HelloSocket = net.Socket & { [kPrefersEcdsa]?: boolean }

/** Builds the address's contexts once (at bind); throws when the default server has no certificate. */
export function listenSecureContexts (listen: ResolvedListen): ListenSecureContexts {
  const byServer = listen.tls
  const fallbackTls = byServer?.get(listen.defaultServer)
  if (byServer === undefined || fallbackTls === undefined) throw new Error(`${listen.key} has no certificate for its default server`)
  const contexts = new Map<ResolvedServer, ServerContexts>()
  let readsHello = false
  for (const [server, t] of byServer) {
    if (server === listen.defaultServer) continue
    let byKind: Map<KeyKind, tls.SecureContext> | undefined
    if (t.certificates.length > 1) {
      readsHello = true
      byKind = new Map()
      for (const c of t.certificates) {
        const kind = keyKind(c.key)
        if (!byKind.has(kind)) byKind.set(kind, tls.createSecureContext(contextOptions(t, c)))
      }
    }
    contexts.set(server, { all: tls.createSecureContext(contextOptions(t)), byKind })
  }
  return {
    fallback: contextOptions(fallbackTls),
    readsHello,
    SNICallback (this: unknown, servername, cb) {
      // nginx lower-cases the name and drops one trailing dot, as it does a Host; an invalid one
      // gets the default certificate here (then Host decides the server, as always).
      const host = normalizeHost(servername)
      const server = typeof host === 'string' && host !== '' ? listen.selector.select(host).server : undefined
      const found = server === undefined ? undefined : contexts.get(server)
      // undefined: Node keeps the connection's own context, the default server's.
      if (found?.byKind === undefined) { cb(null, found?.all); return }
      // Node calls this on the TLSSocket; its handle's parent is the TCP socket the hello was read from.
      const tcp = (this as { _handle?: { _parentWrap?: HelloSocket } } | undefined)?._handle?._parentWrap
      const kind: KeyKind = tcp?.[kPrefersEcdsa] === false ? 'rsa' : 'ecdsa'
      cb(null, found.byKind.get(kind) ?? found.byKind.get(kind === 'rsa' ? 'ecdsa' : 'rsa') ?? found.all)
    }
  }
}

/**
 * A TLS server (https, or http2's secure server) for the address, made by `make` from the
 * address's options: the default server's certificates, the others' by SNI.
 */
const kSni = Symbol('proxyctl.sni')
const kReadsHello = Symbol('proxyctl.readsHello')
type ReloadableTlsServer = tls.Server & { [kSni]: SniCallback, [kReadsHello]?: boolean }

export function createTlsServer<S extends tls.Server> (listen: ResolvedListen, make: (options: tls.TlsOptions) => S): S {
  const c = listenSecureContexts(listen)
  // Node reads SNICallback once, at construction: ours calls whichever the config in force has (updateTlsServer).
  const server = make({
    ...c.fallback,
    SNICallback (this: unknown, servername, cb) { (server as unknown as ReloadableTlsServer)[kSni].call(this, servername, cb) }
  }) as S & ReloadableTlsServer
  server[kSni] = c.SNICallback
  if (c.readsHello) { readHelloFirst(server); server[kReadsHello] = true }
  return server
}

/** A reload: the listener's certificates as the new config read them, for the handshakes from now on. */
export function updateTlsServer (server: tls.Server, listen: ResolvedListen): void {
  const c = listenSecureContexts(listen)
  const s = server as ReloadableTlsServer
  server.setSecureContext(c.fallback)
  s[kSni] = c.SNICallback
  if (c.readsHello && s[kReadsHello] !== true) { readHelloFirst(server); s[kReadsHello] = true }
}

/** Puts a reader of the ClientHello in front of the server's own connection listener. */
function readHelloFirst (server: tls.Server): void {
  const tlsListeners = server.listeners('connection') as Array<(s: net.Socket) => void>
  server.removeAllListeners('connection')
  server.on('connection', (socket: HelloSocket) => {
    socket.once('data', (chunk: Buffer) => {
      socket.pause()
      socket.unshift(chunk)
      socket[kPrefersEcdsa] = prefersEcdsa(chunk)
      for (const l of tlsListeners) l.call(server, socket)
    })
  })
}

/** Whether the client's hello puts ECDSA before RSA; undefined when the bytes are not a readable ClientHello. */
export function prefersEcdsa (b: Buffer): boolean | undefined {
  if (b.length < 44 || b[0] !== 0x16 || b[5] !== 0x01) return undefined
  let p = 43
  p += 1 + (b[p] ?? 0) // session id
  if (p + 2 > b.length) return undefined
  const suitesLen = b.readUInt16BE(p)
  p += 2
  const suites: number[] = []
  for (let i = 0; i + 1 < suitesLen && p + i + 1 < b.length; i += 2) suites.push(b.readUInt16BE(p + i))
  p += suitesLen
  p += 1 + (b[p] ?? 0) // compression methods
  let sigalgs: number[] = []
  let tls13 = false
  if (p + 2 <= b.length) {
    const end = Math.min(b.length, p + 2 + b.readUInt16BE(p))
    p += 2
    while (p + 4 <= end) {
      const type = b.readUInt16BE(p)
      const len = b.readUInt16BE(p + 2)
      const data = b.subarray(p + 4, Math.min(end, p + 4 + len))
      if (type === 0x000d && data.length >= 2) {
        sigalgs = []
        for (let i = 2; i + 1 < data.length; i += 2) sigalgs.push(data.readUInt16BE(i))
      } else if (type === 0x002b && data.length >= 1) {
        for (let i = 1; i + 1 < data.length; i += 2) if (data.readUInt16BE(i) === 0x0304) tls13 = true
      }
      p += 4 + len
    }
  }
  if (tls13) {
    for (const s of sigalgs) {
      if ((s & 0xff) === 0x03 && s >> 8 >= 0x04 && s >> 8 <= 0x06) return true // ecdsa_secp*_sha*
      if ((s >= 0x0804 && s <= 0x0806) || (s >= 0x0809 && s <= 0x080b)) return false // rsa_pss_*
    }
  }
  for (const s of suites) {
    if (ECDSA_SUITES.has(s)) return true
    if (RSA_SUITES.has(s)) return false
  }
  return undefined
}

/** TLS 1.2 suites authenticated by ECDSA (ECDHE-ECDSA-*), and by RSA (ECDHE-RSA-*, DHE-RSA-*, RSA key exchange). */
const ECDSA_SUITES = new Set([0xc02b, 0xc02c, 0xc023, 0xc024, 0xc009, 0xc00a, 0xcca9, 0xc0ac, 0xc0ad, 0xc0ae, 0xc0af])
const RSA_SUITES = new Set([0xc02f, 0xc030, 0xc027, 0xc028, 0xc013, 0xc014, 0xcca8, 0xccaa, 0x009c, 0x009d, 0x009e, 0x009f, 0x002f, 0x0035, 0x003c, 0x003d, 0x0067, 0x006b, 0x0033, 0x0039])
