import { type ResolvedConfig } from '@proxyctl/core'
import { loadConfigFile } from '@proxyctl/core/internal'

/**
 * Loads a config. A TypeScript config whose folder has not installed proxyctl (`npx proxyctl init`
 * in an empty folder) imports this CLI's own packages, resolved as the CLI resolves them: the very
 * modules it runs on, so config and CLI share one copy of core. `previous`: the config in force,
 * on a reload (its unchanged pools and tunnels are carried over).
 */
export async function loadConfig (file: string, previous?: ResolvedConfig): Promise<ResolvedConfig> {
  const fallbackPackages: Record<string, string> = {}
  for (const name of ['proxyctl', '@proxyctl/core', '@proxyctl/plugins']) fallbackPackages[name] = import.meta.resolve(name)
  return await loadConfigFile(file, { fallbackPackages, ...(previous === undefined ? {} : { previous }) })
}
