import type { ProxyConfig } from './types.js'

/**
 * The default export of `proxy.config.ts`. Returns its argument; it exists for the types, so an
 * editor completes and checks every key.
 */
export function defineConfig (config: ProxyConfig): ProxyConfig {
  return config
}
