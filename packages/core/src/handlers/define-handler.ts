import { kHandlerBrand, type CompiledHandler, type HandlerCompileEnv, type LocationHandler } from '../config/types.js'

/**
 * Makes a location handler. `compile` runs once at config load: compile templates there, check
 * references (upstreams, named locations) and throw `env.error(...)` for anything wrong.
 *
 * ```ts
 * export const hello = (name: string) => defineHandler(`hello ${name}`, (env) => {
 *   const t = env.template(name)
 *   return { handle: (req, reply) => reply.send(`hello ${t.render(req.proxyctl)}`) }
 * })
 * ```
 */
export function defineHandler (description: string, compile: (env: HandlerCompileEnv) => CompiledHandler): LocationHandler {
  return { [kHandlerBrand]: true, description, compile }
}

export function isHandler (v: unknown): v is LocationHandler {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[kHandlerBrand] === true
}
