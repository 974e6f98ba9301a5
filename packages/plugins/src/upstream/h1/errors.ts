import { ProxyctlError } from '@proxyctl/core'

/**
 * Failures of the HTTP/1.1 upstream client, one class with a stable `code` each family.
 * classifyUpstreamError (proxy/errors.ts) turns them into nginx's log reasons and 502/504.
 */
export type H1ErrorCode =
  /** The request we were asked to send is malformed (bad method, path or header): our fault, not the peer's. */
  | 'PROXYCTL_H1_INVALID_REQUEST'
  /** No connection within connectTimeout. */
  | 'PROXYCTL_H1_CONNECT_TIMEOUT'
  /** The upstream closed the connection before the response was complete. */
  | 'PROXYCTL_H1_CLOSED'
  /** The upstream's response is not valid HTTP/1.x (status line, header, framing). */
  | 'PROXYCTL_H1_BAD_RESPONSE'
  /** The response head is larger than maxHeaderSize. */
  | 'PROXYCTL_H1_HEADERS_OVERFLOW'
  /** The exchange was aborted by its handler. */
  | 'PROXYCTL_H1_ABORTED'
  /** The client was closed or destroyed. */
  | 'PROXYCTL_H1_CLOSING'

export class H1Error extends ProxyctlError {
  declare readonly code: H1ErrorCode
  constructor (code: H1ErrorCode, message: string) {
    super(code, message)
  }
}
