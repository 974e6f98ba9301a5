/**
 * nginx's `proxy_redirect`: rewriting the `Location` and `Refresh` headers of upstream responses
 * (ngx_http_proxy_redirect, ngx_http_proxy_rewrite_redirect and its handlers).
 *
 *  - `'default'` (also what an unset option means for a target without variables): from the target
 *    as written to the location's path when it has a URI part (`http://app/x/` → `/loc/`), else
 *    from the target plus "/" to "/" (`http://app/` → `/`).
 *  - `{ from: 'http://a:8080/', to: '/' }`: `from` is a case-sensitive prefix of the value, replaced
 *    by `to`. Both are templates (variables allowed).
 *  - `{ from: /re/ or '~re' or '~*re', to }`: when the regex matches anywhere in the value, the
 *    WHOLE value is replaced by `to`, in which `$1`.. and named groups are the regex's captures.
 *    `~re` is PCRE as in server names and locations (core's compilePcre); a RegExp is used as is.
 *  - rules are tried in order; the first that matches wins. `false` turns rewriting off.
 *
 * For `Refresh` the same applies to what follows the first "url=" (any case); a Refresh without
 * "url=" is left alone.
 */
import { ProxyctlError, type RequestContext, type Template } from '@proxyctl/core'
import { compilePcre, namedGroups } from '@proxyctl/core/internal'
import type { ProxyTarget } from './target.js'
import type { LocationKind } from './uri.js'

export type RedirectRule = 'default' | { readonly from: string | RegExp, readonly to: string }

/**
 * `undefined`: not set (nginx's implicit `proxy_redirect default`, silently off for a target with
 * variables). `false`: off.
 */
export type RedirectOption = 'default' | false | undefined | readonly RedirectRule[]

export interface RedirectCompileOptions {
  /** The parsed `proxy()` target. */
  target: ProxyTarget
  /** The location holding `proxy()`; undefined for a server's fallback (taken as `/`). */
  location: { readonly kind: LocationKind, readonly path: string } | undefined
  /**
   * Compiles a template with the location's scope plus the given named captures (those of a
   * regex `from`). Errors it throws propagate.
   */
  compile: (source: string, namedCaptures: ReadonlySet<string>) => Template
}

/**
 * Rewrites one header value. `undefined` when no rule matched: the header is kept as is. A
 * rewritten `Location` starting with "/" is made absolute by nginx (absolute_redirect, as core's
 * `absoluteLocation`); an unmatched one is not, and `Refresh` never is.
 */
export type RedirectRewriter = (value: string, ctx: RequestContext, header?: 'location' | 'refresh') => string | undefined

export const REDIRECT_DEFAULT_WITH_VARIABLES =
  '"proxy_redirect default" cannot be used with "proxy_pass" directive with variables'

/** Thrown by compileRedirect for a configuration nginx refuses. */
export class ProxyRedirectError extends ProxyctlError {
  constructor (message: string) {
    super('PROXYCTL_CONFIG_INVALID', message)
  }
}

/** nginx's config error for `option` with `target`, or undefined when it is fine. */
export function checkRedirectOption (option: RedirectOption, target: ProxyTarget): string | undefined {
  if (target.kind === 'template') {
    if (option === 'default' || (Array.isArray(option) && option.includes('default'))) {
      return REDIRECT_DEFAULT_WITH_VARIABLES
    }
  }
  return undefined
}

interface Rule {
  /** Returns the replacement of the value from `offset` on, or undefined. */
  apply (value: string, offset: number, ctx: RequestContext): string | undefined
}

const FLAGS_TO_DROP = /[gy]/g

/**
 * Compiles `proxy_redirect` for one `proxy()`. Returns null when rewriting is off (`false`, or unset
 * with a target with variables). Throws ProxyRedirectError as checkRedirectOption says.
 */
export function compileRedirect (option: RedirectOption, opts: RedirectCompileOptions): RedirectRewriter | null {
  const refused = checkRedirectOption(option, opts.target)
  if (refused !== undefined) throw new ProxyRedirectError(refused)
  if (option === false) return null
  if (option === undefined) {
    if (opts.target.kind === 'template') return null
    option = 'default'
  }
  const list: readonly RedirectRule[] = option === 'default' ? ['default'] : option
  if (list.length === 0) return null

  const rules: Rule[] = list.map(r => {
    if (r === 'default') return defaultRule(opts)
    if (r.from instanceof RegExp) return regexRule(new RegExp(r.from.source, r.from.flags.replace(FLAGS_TO_DROP, '')), r.to, opts)
    if (r.from.startsWith('~*')) return regexRule(compilePcre(r.from.slice(2), true), r.to, opts)
    if (r.from.startsWith('~')) return regexRule(compilePcre(r.from.slice(1)), r.to, opts)
    return prefixRule(opts.compile(r.from, noNames), opts.compile(r.to, noNames))
  })

  return (value, ctx, header = 'location') => {
    let offset = 0
    if (header === 'refresh') {
      const i = value.toLowerCase().indexOf('url=')
      if (i === -1) return undefined
      offset = i + 4
    }
    for (const rule of rules) {
      const out = rule.apply(value, offset, ctx)
      if (out !== undefined) return value.slice(0, offset) + out
    }
    return undefined
  }
}

const noNames: ReadonlySet<string> = new Set()

function literal (source: string): Template {
  return { source, isStatic: true, variables: [], render: () => source }
}

function defaultRule (opts: RedirectCompileOptions): Rule {
  const target = opts.target
  if (target.kind === 'template') throw new ProxyRedirectError(REDIRECT_DEFAULT_WITH_VARIABLES)
  if (target.uriPart !== undefined) {
    const loc = opts.location
    // regex and named locations cannot have a URI part; the fallback acts as "location /"
    return prefixRule(literal(target.raw), literal(loc === undefined ? '/' : loc.path))
  }
  return prefixRule(literal(target.raw + '/'), literal('/'))
}

function prefixRule (from: Template, to: Template): Rule {
  return {
    apply (value, offset, ctx) {
      const pattern = from.render(ctx)
      if (!value.startsWith(pattern, offset)) return undefined
      return to.render(ctx) + value.slice(offset + pattern.length)
    }
  }
}

function regexRule (re: RegExp, to: string, opts: RedirectCompileOptions): Rule {
  const replacement = opts.compile(to, namedGroups(re))
  return {
    apply (value, offset, ctx) {
      const m = re.exec(offset === 0 ? value : value.slice(offset))
      if (m === null) return undefined
      // `$1`.. in `to` are this regex's captures while it renders
      const saved = ctx.captures
      ctx.captures = m
      try {
        return replacement.render(ctx)
      } finally {
        ctx.captures = saved
      }
    }
  }
}
