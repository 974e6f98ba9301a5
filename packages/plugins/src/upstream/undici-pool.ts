import { createRequire } from 'node:module'
import type { buildConnector as undiciBuildConnector, Pool as UndiciPool } from 'undici'

/**
 * undici's Pool, loaded alone: the package entry also loads fetch, WebSocket, caches and mocks,
 * which cost resident memory in every process that a proxy never uses (measured: bench/README.md,
 * "undici's Pool loaded alone"). undici 7 has no exports map, so the module path is
 * reachable; if a release moves it, the package entry is used instead.
 */
const require = createRequire(import.meta.url)

function loadPool (): typeof UndiciPool {
  try {
    return require('undici/lib/dispatcher/pool.js') as typeof UndiciPool
  } catch {
    return (require('undici') as { Pool: typeof UndiciPool }).Pool
  }
}

export const Pool = loadPool()
export type Pool = UndiciPool

/** undici's connector factory, loaded the same way: TLS upstreams connect through one of their own (pool.ts). */
export const buildConnector: typeof undiciBuildConnector = (() => {
  try {
    return require('undici/lib/core/connect.js') as typeof undiciBuildConnector
  } catch {
    return (require('undici') as { buildConnector: typeof undiciBuildConnector }).buildConnector
  }
})()
