import { asHeaderValue } from '../http/header-value.js'
import { compileAddHeaders, renderAddHeaders } from '../http/response-headers.js'
import type { ConfigError } from '../errors.js'
import type { LocationHandler } from '../config/types.js'
import type { RequestContext } from '../routing/request-context.js'
import { errorPageBody, nginxReason } from '../http/error-page.js'
import { contentTypeOf, withCharset } from '../config/content.js'
import { defineHandler } from './define-handler.js'
import { errorPageFor, followErrorPage } from './error-pages.js'

export interface RespondOptions {
  /** Status code. Default 200, or 302 when `redirect` is set. */
  status?: number
  /**
   * Response headers of this answer, on every status (as addHeaders' `always`); values are
   * templates, one that renders empty is not sent; `Content-Type` replaces the body's type. The
   * location's addHeaders apply as well.
   */
  headers?: Record<string, string>
  /** Body template. Without one, error statuses get nginx's small HTML page, others an empty body. */
  body?: string
  /** Redirect target template; a path is made absolute with `$scheme://$host[:port]`, as nginx does. */
  redirect?: string
}

const REDIRECT_CODES = new Set([301, 302, 303, 307, 308])

/**
 * nginx's `return`: `respond(204)`, `respond(200, 'hello $remote_addr\n')`,
 * `respond(301, '/new/$1')` (a redirect for 301, 302, 303, 307, 308), or `respond({ ... })`.
 */
export function respond (statusOrOptions: number | RespondOptions, text?: string): LocationHandler {
  const opts: RespondOptions = typeof statusOrOptions === 'number'
    ? REDIRECT_CODES.has(statusOrOptions) && text !== undefined
      ? { status: statusOrOptions, redirect: text }
      : { status: statusOrOptions, ...(text !== undefined ? { body: text } : {}) }
    : statusOrOptions
  const status = opts.status ?? (opts.redirect !== undefined ? 302 : 200)
  const description = `respond ${status}${opts.redirect !== undefined ? ` ${opts.redirect}` : ''}`

  return defineHandler(description, (env) => {
    if (!Number.isInteger(status) || status < 100 || status > 999) throw env.error(`invalid status ${status}`, '.status')
    const body = opts.body === undefined ? undefined : env.template(opts.body, '.body')
    const redirect = opts.redirect === undefined ? undefined : env.template(opts.redirect, '.redirect')
    // The addHeaders mechanism, every entry `always`.
    const errors: ConfigError[] = []
    const headers = compileAddHeaders(opts.headers, undefined, (source, at) => env.template(source, at.slice(env.keyPath.length)), `${env.keyPath}.headers`, errors, true)
    if (errors.length > 0) throw errors[0]
    // nginx's page for errors, and for a redirect's answer too (ngx_http_send_special_response).
    const fallbackBody = status >= 400 || (redirect !== undefined && REDIRECT_CODES.has(status)) ? errorPageBody(status) : undefined
    const reason = nginxReason(status)

    return {
      handle (request, reply) {
        const ctx = request.proxyctl
        reply.code(status)
        if (reason !== undefined) reply.raw.statusMessage = reason
        // A value beyond ASCII is its UTF-8 bytes as Latin-1 (header-value.ts); the body goes as bytes (below).
        if (headers !== undefined) renderAddHeaders(headers, ctx, status, (_name, lower, value) => { if (value !== '') reply.header(lower, value) })
        if (redirect !== undefined) reply.header('location', asHeaderValue(absoluteLocation(redirect.render(ctx), ctx)))
        if (body !== undefined) {
          // nginx's return: the type of the URI's extension, else default_type; charset as set.
          if (!reply.hasHeader('content-type')) {
            const content = ctx.location?.content ?? ctx.server.content
            reply.type(withCharset(contentTypeOf(ctx.uri, content), content))
          }
          // Bytes: a string would have Fastify add '; charset=utf-8' to a JSON type, and Node
          // write a head with non-ASCII values in the body's encoding.
          return reply.send(Buffer.from(body.render(ctx)))
        }
        if (fallbackBody !== undefined && redirect === undefined && headers === undefined) {
          // nginx's `return 4xx/5xx` goes through error_page.
          const rule = errorPageFor(ctx, status)
          if (rule !== undefined) { followErrorPage(request, reply, rule, status); return reply }
        }
        if (fallbackBody !== undefined) {
          // Inside an error page, this error's own status goes out (nginx's err_status).
          if (status >= 400) ctx.statusOverride = undefined
          return reply.type('text/html').send(fallbackBody)
        }
        return reply.send()
      },
      explain (ctx) {
        const out: Record<string, unknown> = { status }
        if (headers !== undefined) {
          const shown: Array<[string, string]> = []
          renderAddHeaders(headers, ctx, status, (name, _lower, value) => { if (value !== '') shown.push([name, value]) })
          out.headers = shown
        }
        if (redirect !== undefined) out.location = absoluteLocation(redirect.render(ctx), ctx)
        if (body !== undefined) out.body = body.render(ctx)
        else if (fallbackBody !== undefined) {
          const rule = redirect === undefined && headers === undefined ? errorPageFor(ctx, status) : undefined
          if (rule !== undefined) out.errorPage = rule.source
          else out.body = `(nginx's page for ${status})`
        }
        return { kind: 'respond', ...out }
      }
    }
  })
}

/** nginx's absolute_redirect: a path becomes `scheme://host[:port]path`. */
export function absoluteLocation (target: string, ctx: RequestContext): string {
  if (!target.startsWith('/')) return target
  const l = ctx.listen
  // server_name_in_redirect off: the client's Host, else the address it connected to.
  const local = ctx.socket.localAddress ?? ''
  const host = ctx.host !== '' ? ctx.host : local.includes(':') ? `[${local}]` : local
  // nginx's port_in_redirect: the port the request came in on, left out when it is the default.
  const port = ctx.socket.localPort ?? l.port
  const defaultPort = l.kind === 'unix' || (l.scheme === 'https' ? port === 443 : port === 80)
  return `${l.scheme}://${host}${defaultPort ? '' : `:${port}`}${target}`
}
