import type { FastifyReply, FastifyRequest } from 'fastify'
import { errorPageBody } from '../http/error-page.js'
import type { RequestContext } from '../routing/request-context.js'
import { internalRedirect } from '../routing/internal-redirect.js'
import type { ErrorPageRule } from '../config/model.js'

/** The error_page rule that applies to `status` for this request now, if any. */
export function errorPageFor (ctx: RequestContext, status: number): ErrorPageRule | undefined {
  if (ctx.errorPageUsed) return undefined
  return (ctx.location?.errorPages ?? ctx.server.errorPages)?.get(status)
}

/**
 * Takes an error_page rule for a request: an absolute URL is a redirect; otherwise an internal
 * redirect (to a URI the method becomes GET, as nginx) whose answer goes out with the rule's status.
 */
export function followErrorPage (request: FastifyRequest, reply: FastifyReply, rule: ErrorPageRule, status: number): void {
  const ctx = request.proxyctl
  ctx.errorPageUsed = true
  const target = rule.target.render(ctx)
  if (/^https?:\/\//i.test(target)) {
    void reply.code(typeof rule.status === 'number' ? rule.status : 302).header('location', target).type('text/html').send(errorPageBody(302))
    return
  }
  ctx.statusOverride = rule.status === 'keep' ? status : rule.status === 'target' ? undefined : rule.status
  // nginx makes the method GET for a URI target only; a named location keeps it.
  const m = request.raw.method
  if (!target.startsWith('@') && m !== 'GET' && m !== 'HEAD') request.raw.method = 'GET'
  internalRedirect(request, reply, target)
}

/**
 * Answers an error status as nginx does: through the location's error_page rule when one
 * matches, else nginx's small HTML page. Handlers call this instead of sending errors themselves.
 */
export function sendStatus (request: FastifyRequest, reply: FastifyReply, status: number): void {
  const rule = errorPageFor(request.proxyctl, status)
  if (rule !== undefined) { followErrorPage(request, reply, rule, status); return }
  // An error inside an error page goes out with its own status (nginx's err_status), not the rule's.
  request.proxyctl.statusOverride = undefined
  void reply.code(status).type('text/html').send(errorPageBody(status))
}
