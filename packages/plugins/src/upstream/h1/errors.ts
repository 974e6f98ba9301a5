import { ProxyctlError, type ProxyctlErrorCode } from '@proxyctl/core'

/** The client's codes: PROXYCTL_H1_* in core's one list of codes (errors.ts), where each is described. */
export type H1ErrorCode = Extract<ProxyctlErrorCode, `PROXYCTL_H1_${string}`>

/**
 * Failures of the HTTP/1.1 upstream client, in the ProxyctlError family.
 * classifyUpstreamError (proxy/errors.ts) turns them into nginx's log reasons and 502/504.
 */
export class H1Error extends ProxyctlError {
  declare readonly code: H1ErrorCode
  constructor (code: H1ErrorCode, message: string) {
    super(code, message)
  }
}
