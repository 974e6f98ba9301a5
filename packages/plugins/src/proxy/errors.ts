import { ProxyctlError, type ProxyctlErrorCode } from '@proxyctl/core'

/** Why an attempt at an upstream failed, and what the client gets for it (as nginx answers). */
export class UpstreamError extends ProxyctlError {
  /** 502 or 504. */
  readonly status: number
  /** nginx's proxy_next_upstream category: `error`, `timeout`, `invalid_header`. */
  readonly kind: 'error' | 'timeout' | 'invalid_header'
  constructor (code: ProxyctlErrorCode, kind: UpstreamError['kind'], status: number, message: string, cause?: unknown) {
    super(code, message, { cause })
    this.kind = kind
    this.status = status
  }
}

/** Node's codes for a certificate that does not verify (OpenSSL's X509_V_ERR_* names, and the name check's). */
const TLS_VERIFY_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID'
])

/** Maps an undici/socket error to nginx's categories, statuses and a log reason. */
export function classifyUpstreamError (err: unknown, phase: 'connecting' | 'sending' | 'reading'): UpstreamError {
  if (err instanceof UpstreamError) return err
  const e = err as NodeJS.ErrnoException & { code?: string }
  // An upstream that refuses the client certificate says so after a TLS 1.3 handshake: undici
  // reports the closed socket, with the alert as its cause.
  const cause = (e as { cause?: NodeJS.ErrnoException } | undefined)?.cause
  const viaCause = cause?.code?.startsWith('ERR_SSL_') === true ? cause : undefined
  const code = viaCause?.code ?? e?.code ?? ''
  const msg = viaCause?.message ?? e?.message ?? String(err)
  if (TLS_VERIFY_CODES.has(code)) {
    return new UpstreamError('PROXYCTL_UPSTREAM_TLS_FAILED', 'error', 502, `upstream SSL certificate verify error: (${code}: ${msg}) while SSL handshaking to upstream`, err)
  }
  if (code.startsWith('ERR_SSL_') || code === 'EPROTO') {
    return new UpstreamError('PROXYCTL_UPSTREAM_TLS_FAILED', 'error', 502, `SSL_do_handshake() failed (${code}: ${msg}) while SSL handshaking to upstream`, err)
  }
  switch (code) {
    case 'UND_ERR_INVALID_ARG':
    case 'PROXYCTL_H1_INVALID_REQUEST':
      // The request we built was refused before it left: ours to answer (500), not the server's failure.
      return new UpstreamError('PROXYCTL_UPSTREAM_REQUEST_INVALID', 'error', 500, msg, err)
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'PROXYCTL_H1_CONNECT_TIMEOUT':
      return new UpstreamError('PROXYCTL_UPSTREAM_TIMEOUT', 'timeout', 504, 'upstream timed out while connecting', err)
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new UpstreamError('PROXYCTL_UPSTREAM_TIMEOUT', 'timeout', 504, 'upstream timed out while reading response header', err)
    case 'UND_ERR_BODY_TIMEOUT':
      return new UpstreamError('PROXYCTL_UPSTREAM_TIMEOUT', 'timeout', 504, 'upstream timed out while reading upstream', err)
    case 'ECONNREFUSED':
    case 'ENOENT':
    case 'EACCES':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UpstreamError('PROXYCTL_UPSTREAM_CONNECT_FAILED', 'error', 502, `connect() failed (${code}: ${msg}) while connecting to upstream`, err)
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_VERSION':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE':
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'PROXYCTL_H1_BAD_RESPONSE':
    case 'PROXYCTL_H1_HEADERS_OVERFLOW':
      return new UpstreamError('PROXYCTL_UPSTREAM_BAD_RESPONSE', 'invalid_header', 502, `upstream sent an invalid response (${code || e?.name}: ${msg})`, err)
    default:
      if (code.startsWith('HPE_') || e?.name === 'HTTPParserError') {
        return new UpstreamError('PROXYCTL_UPSTREAM_BAD_RESPONSE', 'invalid_header', 502, `upstream sent an invalid response (${code || e?.name}: ${msg})`, err)
      }
      return new UpstreamError('PROXYCTL_UPSTREAM_RESET', 'error', 502,
        `upstream ${code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'PROXYCTL_H1_CLOSED' ? 'closed or reset the connection' : `failed (${code || e?.name}: ${msg})`} while ${phase === 'connecting' ? 'connecting to' : phase === 'sending' ? 'sending to' : 'reading from'} upstream`, err)
  }
}
