/** What compiled templates are, apart from the compiler, so the config model can name them. */
import type { RequestContext } from '../routing/request-context.js'

/** A template compiled at config load: `render` only concatenates. */
export interface Template {
  readonly source: string
  /** True when the template has no variables; `render` then returns `source`. */
  readonly isStatic: boolean
  /** Names of the variables used, without `$`. */
  readonly variables: readonly string[]
  render (ctx: RequestContext): string
}

/** Which variables a template may name, beyond the built-in ones. */
export interface CompileScope {
  /** Named groups of enclosing regex locations, usable as `$name`. */
  readonly namedCaptures: ReadonlySet<string>
  /** Variables the config defines (`maps`), by name. */
  readonly defined?: ReadonlyMap<string, (ctx: RequestContext) => string>
}
