/**
 * nginx's `map`: a variable computed from another when it is read. The source is a template;
 * variants are exact strings (case-insensitive, as nginx), with `hostnames` also `*.example.com`,
 * `example.*` and `.example.com` masks, and regexes (`~` case-sensitive, `~*` not) whose captures
 * the value may use; priority as nginx: exact, longest leading mask, longest trailing mask, the
 * first regex in order, `default` (else empty). Values are templates.
 */
import type { RequestContext } from '../routing/request-context.js'
import { compilePcre } from '../routing/pcre.js'
import type { Template } from './types.js'

export interface CompiledMap {
  readonly source: Template
  readonly exact: ReadonlyMap<string, Template>
  readonly leading: ReadonlyArray<[suffix: string, value: Template]>
  readonly trailing: ReadonlyArray<[prefix: string, value: Template]>
  readonly regexes: ReadonlyArray<[RegExp, Template]>
  readonly fallback: Template | undefined
  readonly hostnames: boolean
}

/** Reads a map's variants; `compile` compiles a value (its key path suffix given). Throws a message for a bad variant. */
export function compileMap (source: Template, values: Record<string, string>, hostnames: boolean,
  compile: (value: string, key: string) => Template): CompiledMap {
  const exact = new Map<string, Template>()
  const leading: Array<[string, Template]> = []
  const trailing: Array<[string, Template]> = []
  const regexes: Array<[RegExp, Template]> = []
  let fallback: Template | undefined
  for (const [key, value] of Object.entries(values)) {
    const t = compile(value, key)
    if (key === 'default') { fallback = t; continue }
    if (key.startsWith('~')) {
      const caseless = key.startsWith('~*')
      const re = key.slice(caseless ? 2 : 1)
      try { regexes.push([compilePcre(re, caseless), t]) } catch (err) { throw new Error(`invalid regular expression "${key}": ${(err as Error).message}`) }
      continue
    }
    const k = key.startsWith('\\') ? key.slice(1) : key
    if (hostnames && k.startsWith('*.')) { leading.push([k.slice(1).toLowerCase(), t]); continue }
    if (hostnames && k.startsWith('.') && k.length > 1) { leading.push([k.toLowerCase(), t]); exact.set(k.slice(1).toLowerCase(), t); continue }
    if (hostnames && k.endsWith('.*')) { trailing.push([k.slice(0, -1).toLowerCase(), t]); continue }
    exact.set(k.toLowerCase(), t)
  }
  leading.sort((a, b) => b[0].length - a[0].length)
  trailing.sort((a, b) => b[0].length - a[0].length)
  return { source, exact, leading, trailing, regexes, fallback, hostnames }
}

/** The map's value for this request. A regex's captures are `$1`.. in its value, as nginx. */
export function mapValue (map: CompiledMap, ctx: RequestContext): string {
  let input = map.source.render(ctx)
  if (map.hostnames && input.endsWith('.')) input = input.slice(0, -1)
  const key = input.toLowerCase()
  const hit = map.exact.get(key)
  if (hit !== undefined) return hit.render(ctx)
  for (const [suffix, t] of map.leading) if (key.endsWith(suffix) && key.length > suffix.length) return t.render(ctx)
  for (const [prefix, t] of map.trailing) if (key.startsWith(prefix) && key.length > prefix.length) return t.render(ctx)
  for (const [re, t] of map.regexes) {
    const m = re.exec(input)
    if (m === null) continue
    if (t.isStatic) return t.source
    const saved = ctx.captures
    ctx.captures = m
    try { return t.render(ctx) } finally { ctx.captures = saved }
  }
  return map.fallback?.render(ctx) ?? ''
}
