/** nginx's error_page: the rules read at config load, and how a request takes one. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ConfigError } from '../errors.js'
import { errorPageBody, nginxReason } from '../http/error-page.js'
import type { RequestContext } from '../routing/request-context.js'
import { internalRedirect } from '../routing/internal-redirect.js'
import { compileTemplate } from '../variables/compile.js'
import type { CompileScope, Template } from '../variables/types.js'
import type { ErrorPageRule, ErrorPageRules, ResolvedServer } from '../config/model.js'

/** Parses `{ '404 410': '=200 /gone.html' }` into rules; templates compile against `scope`. */
export function parseErrorPages (pages: Record<string, string>, keyPath: string, scope: CompileScope, errors: ConfigError[]): Map<number, ErrorPageRule> {
  const rules = new Map<number, ErrorPageRule>()
  for (const [codes, value] of Object.entries(pages)) {
    const kp = `${keyPath}.errorPages[${JSON.stringify(codes)}]`
    const m = /^(=(\d{3})?\s+)?(\S+)$/.exec(value.trim())
    if (m === null) { errors.push(new ConfigError(kp, `expected "TARGET", "=CODE TARGET" or "= TARGET", got "${value}"`)); continue }
    const status = m[1] === undefined ? 'keep' : m[2] === undefined ? 'target' : Number(m[2])
    let target: Template
    try { target = compileTemplate(m[3] as string, scope) } catch (err) {
      errors.push(new ConfigError(kp, (err as Error).message)); continue
    }
    for (const code of codes.trim().split(/\s+/)) rules.set(Number(code), { target, status, source: value })
  }
  return rules
}

/** A rule naming a location (`@name`) must name one of its server's; one error per rule that does not. */
export function checkErrorPageTargets (server: ResolvedServer): ConfigError[] {
  const errors: ConfigError[] = []
  const check = (rules: ErrorPageRules | undefined, keyPath: string): void => {
    for (const rule of rules?.values() ?? []) {
      const t = rule.target.source
      if (t.startsWith('@') && !server.named.has(t)) errors.push(new ConfigError(`${keyPath}.errorPages`, `named location "${t}" is not defined in ${server.keyPath}`))
    }
  }
  check(server.errorPages, server.keyPath)
  // a location's own rules only; inherited ones were checked where they are written
  for (const loc of server.all) if (loc.errorPages !== (loc.parent?.errorPages ?? server.errorPages)) check(loc.errorPages, loc.keyPath)
  return errors
}

/** The error_page rule that applies to `status` for this request now, if any. */
export function errorPageFor (ctx: RequestContext, status: number): ErrorPageRule | undefined {
  if (ctx.errorPageUsed) return undefined
  return (ctx.location?.errorPages ?? ctx.server.errorPages)?.get(status)
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])

/**
 * Takes an error_page rule for a request: an absolute URL is a redirect; otherwise an internal
 * redirect (to a URI the method becomes GET, as nginx) whose answer goes out with the rule's status.
 */
export function followErrorPage (request: FastifyRequest, reply: FastifyReply, rule: ErrorPageRule, status: number): void {
  const ctx = request.proxyctl
  ctx.errorPageUsed = true
  const target = rule.target.render(ctx)
  if (/^https?:\/\//i.test(target)) {
    // nginx keeps =CODE only when it is a redirect status (else 302), and sends that status's page.
    const code = typeof rule.status === 'number' && REDIRECTS.has(rule.status) ? rule.status : 302
    void reply.code(code).header('location', target).type('text/html').send(errorPageBody(code))
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
  const reason = nginxReason(status)
  if (reason !== undefined) reply.raw.statusMessage = reason
  void reply.code(status).type('text/html').send(errorPageBody(status))
}
