import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { createJiti } from 'jiti'
import { ConfigErrors, ConfigLoadError } from '../errors.js'
import { resolveConfig, type ResolvedConfig } from './resolve.js'

/** Names `proxyctl` looks for, in order, when no `--config` is given. */
export const CONFIG_FILE_NAMES = ['proxy.config.ts', 'proxy.config.mts', 'proxy.config.js', 'proxy.config.mjs']

export function findConfigFile (dir: string): string | undefined {
  for (const name of CONFIG_FILE_NAMES) {
    const p = path.join(dir, name)
    if (fs.existsSync(p)) return p
  }
  return undefined
}

/**
 * Imports a config module and resolves it. TypeScript configs are loaded with jiti (Node 20
 * cannot strip types); the packages they import are loaded natively, so the config and the CLI
 * share one copy of proxyctl.
 */
export async function loadConfigFile (file: string): Promise<ResolvedConfig> {
  const abs = path.resolve(file)
  if (!fs.existsSync(abs)) throw new ConfigLoadError(file, 'no such file')
  let mod: unknown
  try {
    if (/\.(c|m)?js$/.test(abs)) {
      mod = await import(pathToFileURL(abs).href)
    } else {
      const jiti = createJiti(import.meta.url, { interopDefault: false, moduleCache: false, fsCache: false, tryNative: false })
      mod = await jiti.import(abs)
    }
  } catch (err) {
    const e = err as Error
    const message = (e.message || String(err)).split('\n').filter((l) => l.trim() !== '').slice(0, 6).join('\n')
    throw new ConfigLoadError(file, `cannot load config: ${message}`, { cause: err })
  }
  const config = (mod as { default?: unknown } | undefined)?.default
  if (config === undefined || config === null || typeof config !== 'object') {
    throw new ConfigLoadError(file, 'the config module must `export default defineConfig({ ... })`')
  }
  try {
    return resolveConfig(config, { file: abs })
  } catch (err) {
    if (err instanceof ConfigErrors) err.setFile(abs)
    throw err
  }
}
