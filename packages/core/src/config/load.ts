import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
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
 * Imports a TypeScript config as Vite imports vite.config.ts: esbuild bundles the config and
 * the local files it imports into one ES module beside it (packages stay imports, so the config
 * and the CLI share one copy of proxyctl), Node imports that, and the file is removed. esbuild's
 * service process is stopped afterwards: loading costs no memory while serving.
 */
async function importTypeScript (file: string): Promise<unknown> {
  const esbuild = await import('esbuild')
  let code: string
  try {
    const result = await esbuild.build({
      entryPoints: [file],
      bundle: true,
      packages: 'external',
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      sourcemap: 'inline',
      logLevel: 'silent'
    })
    code = (result.outputFiles[0] as { text: string }).text
  } catch (err) {
    const errors = (err as { errors?: Array<{ text: string, location?: { file: string, line: number, column: number } | null }> }).errors
    if (errors !== undefined && errors.length > 0) {
      throw new Error(errors.slice(0, 5).map((e) => e.location ? `${e.location.line}:${e.location.column}: ${e.text}` : e.text).join('\n'))
    }
    throw err
  } finally {
    await esbuild.stop()
  }
  const out = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${Date.now()}.mjs`)
  fs.writeFileSync(out, code)
  try {
    return await import(pathToFileURL(out).href)
  } finally {
    fs.rmSync(out, { force: true })
  }
}

/** Imports a config module and resolves it. TypeScript needs no build step from the user. */
export async function loadConfigFile (file: string): Promise<ResolvedConfig> {
  const abs = path.resolve(file)
  if (!fs.existsSync(abs)) throw new ConfigLoadError(file, 'no such file')
  let mod: unknown
  try {
    mod = /\.(c|m)?js$/.test(abs) ? await import(pathToFileURL(abs).href) : await importTypeScript(abs)
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
