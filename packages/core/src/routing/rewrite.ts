/**
 * nginx's `rewrite REGEX REPLACEMENT [last|break|redirect|permanent]`, at server level (before a
 * location is selected) and location level (after): rules run in order against `$uri`; a match
 * sets `$1`.. and replaces the URI. The replacement's query replaces the client's and is followed
 * by it (`/x?a=1` gives `a=1&CLIENT_ARGS`), unless it ends with `?`. A replacement starting with
 * `http://`, `https://` or `$scheme` is a redirect (302), as are the `redirect` (302) and
 * `permanent` (301) flags. `last` stops and selects a location for the new URI; `break` stops and
 * stays; without a flag the next rules run, and a changed URI is then located again.
 */
import { posix } from 'node:path'
import type { RequestContext } from './request-context.js'
import type { Template } from '../variables/types.js'

export type RewriteFlag = 'last' | 'break' | 'redirect' | 'permanent'

export interface RewriteRule {
  readonly regex: RegExp
  readonly replacement: Template
  readonly flag: RewriteFlag | undefined
  /** The replacement names a scheme: a redirect whatever the flag. */
  readonly absolute: boolean
  /** The rule as written (`^/old/(.*)$ /new/$1 permanent`) and where, for `proxyctl explain`. */
  readonly source?: string
  readonly keyPath?: string
}

export type RewriteOutcome =
  | { readonly kind: 'unchanged' | 'changed' | 'last' | 'break' }
  | { readonly kind: 'redirect', readonly status: 301 | 302, readonly location: string }

/** One rewrite rule tried (`proxyctl explain`): whether it matched, and the URI and args after it. */
export interface RewriteStep {
  rule: RewriteRule
  matched: boolean
  uri: string
  args: string
}

export function runRewrites (rules: readonly RewriteRule[], ctx: RequestContext, trace?: (step: RewriteStep) => void): RewriteOutcome {
  let changed = false
  for (const rule of rules) {
    const m = rule.regex.exec(ctx.uri)
    if (m === null) {
      if (trace !== undefined) trace({ rule, matched: false, uri: ctx.uri, args: ctx.args })
      continue
    }
    ctx.captures = m
    const replaced = rule.replacement.render(ctx)
    const keepArgs = !replaced.endsWith('?')
    const target = keepArgs ? replaced : replaced.slice(0, -1)
    const q = target.indexOf('?')
    const newArgs = q === -1 ? undefined : target.slice(q + 1)
    const args = newArgs === undefined ? (keepArgs ? ctx.args : '') : keepArgs && ctx.args !== '' ? `${newArgs}&${ctx.args}` : newArgs
    const path = q === -1 ? target : target.slice(0, q)
    if (rule.absolute || rule.flag === 'redirect' || rule.flag === 'permanent') {
      if (trace !== undefined) trace({ rule, matched: true, uri: ctx.uri, args: ctx.args })
      return { kind: 'redirect', status: rule.flag === 'permanent' ? 301 : 302, location: args === '' ? path : `${path}?${args}` }
    }
    ctx.uri = posix.normalize(path.startsWith('/') ? path : `/${path}`)
    ctx.args = args
    ctx.argMap = undefined
    ctx.uriChanged = true
    changed = true
    if (trace !== undefined) trace({ rule, matched: true, uri: ctx.uri, args: ctx.args })
    if (rule.flag === 'last' || rule.flag === 'break') return { kind: rule.flag }
  }
  return { kind: changed ? 'changed' : 'unchanged' }
}
