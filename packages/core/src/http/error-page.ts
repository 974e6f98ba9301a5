import { STATUS_CODES, type ServerResponse } from 'node:http'

/**
 * The small HTML page nginx sends for an error status with no body of its own. Bodies are built
 * once per status and reused.
 */
const pages = new Map<number, Buffer>()
/** The same pages, to tell one of them among the bodies of answers (isOwnPage). */
const pageBodies = new WeakSet<object>()

/** Where nginx's wording (its status lines and page titles) differs from Node's STATUS_CODES. */
const NGINX_TITLES: Record<number, string> = {
  405: 'Not Allowed', 408: 'Request Time-out', 413: 'Request Entity Too Large', 414: 'Request-URI Too Large', 416: 'Requested Range Not Satisfiable',
  503: 'Service Temporarily Unavailable', 504: 'Gateway Time-out'
}
/** nginx's status line says "302 Moved Temporarily" where its 302 page is titled "302 Found". */
const NGINX_LINES: Record<number, string> = { ...NGINX_TITLES, 302: 'Moved Temporarily' }

/** nginx's internal statuses, answered as 400 with a page of their own (494: a head too large for its buffers). */
const NGINX_400S: Record<number, string> = { 494: 'Request Header Or Cookie Too Large' }

/** The reason phrase nginx gives a status on its status line ("Request Time-out" for 408). */
export function statusReason (status: number): string {
  return NGINX_LINES[status] ?? STATUS_CODES[status] ?? 'Unknown'
}

/**
 * nginx's reason phrase where it differs from Node's, for `res.statusMessage` of an answer
 * proxyctl makes itself (a proxied answer keeps the upstream's); undefined where they agree.
 */
export function nginxReason (status: number): string | undefined {
  return NGINX_LINES[status]
}

/** The status on the wire: nginx's internal ones (494) go out as 400. */
export function wireStatus (status: number): number {
  return NGINX_400S[status] === undefined ? status : 400
}

export function errorPageBody (status: number): Buffer {
  let page = pages.get(status)
  if (page === undefined) {
    const detail = NGINX_400S[status]
    const title = detail === undefined ? `${status} ${NGINX_TITLES[status] ?? STATUS_CODES[status] ?? 'Unknown'}` : `400 ${detail}`
    const heading = detail === undefined ? title : '400 Bad Request'
    const extra = detail === undefined ? '' : `<center>${detail}</center>\r\n`
    page = Buffer.from(`<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${heading}</h1></center>\r\n${extra}<hr><center>proxyctl</center>\r\n</body>\r\n</html>\r\n`)
    pages.set(status, page)
    pageBodies.add(page)
  }
  return page
}

/** Whether an answer's body is one of proxyctl's own pages (nginx's special response). */
export function isOwnPage (body: unknown): boolean {
  return typeof body === 'object' && body !== null && pageBodies.has(body)
}

/** Answers on a raw response (used where Fastify's reply is not in play: routing errors, hijacked replies). */
export function sendErrorPage (res: ServerResponse, status: number, headers?: Record<string, string | string[]>): void {
  if (res.headersSent) { res.destroy(); return }
  const body = errorPageBody(status)
  res.writeHead(status, statusReason(status), { ...headers, 'content-type': 'text/html', 'content-length': body.length })
  res.end(res.req?.method === 'HEAD' ? undefined : body)
}
