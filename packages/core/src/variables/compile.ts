import { ProxyctlError } from '../errors.js'
import type { CompileScope, Template } from './types.js'
import {
  builtinVariables, captureVariable, namedCaptureVariable, prefixVariables, type VariableGetter
} from './builtins.js'

export const emptyScope: CompileScope = { namedCaptures: new Set() }

/** Thrown for a template that names an unknown variable or is malformed. */
export class TemplateError extends ProxyctlError {
  constructor (message: string) { super('PROXYCTL_CONFIG_INVALID', message) }
}

const pluginVariables = new Map<string, VariableGetter>()

/**
 * Lets a plugin add a variable (e.g. `$upstream_addr`). Call at import time of the plugin module,
 * so configs that use it compile.
 */
export function registerVariable (name: string, getter: VariableGetter): void {
  pluginVariables.set(name, getter)
}

function resolveVariable (name: string, scope: CompileScope): VariableGetter | undefined {
  if (/^[1-9]$/.test(name)) return captureVariable(Number(name))
  if (scope.namedCaptures.has(name)) return namedCaptureVariable(name)
  const defined = scope.defined?.get(name)
  if (defined !== undefined) return defined
  const fixed = builtinVariables.get(name) ?? pluginVariables.get(name)
  if (fixed !== undefined) return fixed
  for (const [prefix, make] of prefixVariables) {
    if (name.startsWith(prefix) && name.length > prefix.length) return make(name.slice(prefix.length))
  }
  return undefined
}

/**
 * Compiles `"$scheme://$host$request_uri"` into a render function. Syntax as nginx: `$name`
 * (letters, digits, `_`), `${name}` to end a name early, `$1`..`$9` (one digit, so `$1abc` is
 * `$1` then `abc`).
 */
export function compileTemplate (source: string, scope: CompileScope = emptyScope): Template {
  const parts: Array<string | VariableGetter> = []
  const variables: string[] = []
  let literal = ''
  let i = 0
  while (i < source.length) {
    const ch = source[i]
    if (ch !== '$') { literal += ch; i++; continue }
    let name: string
    if (source[i + 1] === '{') {
      const end = source.indexOf('}', i + 2)
      if (end === -1) throw new TemplateError(`unterminated "\${" in "${source}"`)
      name = source.slice(i + 2, end)
      i = end + 1
    } else if (/[1-9]/.test(source[i + 1] ?? '')) {
      name = source[i + 1] as string
      i += 2
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(source.slice(i + 1))
      if (m === null) throw new TemplateError(`invalid variable name in "${source}" at offset ${i}`)
      name = m[0]
      i += 1 + name.length
    }
    const getter = resolveVariable(name, scope)
    if (getter === undefined) throw new TemplateError(`unknown variable "$${name}"`)
    if (literal !== '') { parts.push(literal); literal = '' }
    parts.push(getter)
    variables.push(name)
  }
  if (literal !== '') parts.push(literal)
  return makeTemplate(source, parts, variables)
}

function makeTemplate (source: string, parts: Array<string | VariableGetter>, variables: string[]): Template {
  const base = { source, variables, isStatic: variables.length === 0 }
  // Specialise the common shapes so rendering is a call or two, not a loop.
  if (parts.length === 0) return { ...base, render: () => '' }
  if (parts.length === 1) {
    const p = parts[0] as string | VariableGetter
    return { ...base, render: typeof p === 'string' ? () => p : p }
  }
  return {
    ...base,
    render (ctx) {
      let out = ''
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i] as string | VariableGetter
        out += typeof p === 'string' ? p : p(ctx)
      }
      return out
    }
  }
}
