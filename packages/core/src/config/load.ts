import { runPreflight } from './preflight.js'
import fs from 'node:fs'
import { isBuiltin } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Plugin } from 'esbuild'
import { ConfigErrors, ConfigLoadError } from '../errors.js'
import type { ResolvedConfig } from './model.js'
import { resolveConfig } from './resolve.js'

/** Names `proxyctl` looks for, in order, when no `--config` is given. */
export const CONFIG_FILE_NAMES = ['proxy.config.ts', 'proxy.config.mts', 'proxy.config.js', 'proxy.config.mjs']

export function findConfigFile (dir: string): string | undefined {
  for (const name of CONFIG_FILE_NAMES) {
    const p = path.join(dir, name)
    if (fs.existsSync(p)) return p
  }
  return undefined
}

export interface LoadConfigOptions {
  /**
   * Bare imports the config's folder cannot resolve, by package name: the module URL to use
   * instead. The CLI passes its own `proxyctl`, `@proxyctl/core` and `@proxyctl/plugins`, so a
   * config in a folder with nothing installed shares the running CLI's copy (TypeScript configs).
   */
  fallbackPackages?: Record<string, string>
  /**
   * The config in force, on a reload (resolve.ts's ResolveOptions.previous). A JavaScript
   * config is imported afresh then (Node keeps a module once imported; the files it imports
   * itself stay as first loaded); a TypeScript one is bundled anew each time anyway.
   */
  previous?: ResolvedConfig
}

/** Each reload's import of a JavaScript config is a new module URL (ESM caches by URL). */
let reloads = 0

// Marks the plugin's own build.resolve() calls, which run its onResolve again.
const kResolving = Symbol('proxyctl.resolving')

/**
 * Rewrites each bare import (a package) to the absolute file URL it resolves to from the importing
 * file, so the bundle runs from a temporary folder as if it sat beside the config. The folder's
 * own install wins (a project that installed proxyctl uses its copy); else `fallback` names one.
 */
function resolvePackages (fallback: Record<string, string>): Plugin {
  return {
    name: 'proxyctl-resolve-packages',
    setup (build) {
      build.onResolve({ filter: /^[^./]/ }, async (args) => {
        // Builtins and URLs (node:, file:, data:) are left to esbuild and Node.
        if (args.pluginData === kResolving || isBuiltin(args.path) || /^[a-z][a-z\d+.-]*:/i.test(args.path)) return undefined
        const found = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: kResolving })
        if (found.errors.length === 0 && found.path !== '') {
          // TypeScript (tsconfig `paths`, a linked package's source) is bundled: Node cannot import it.
          if (/\.[cm]?tsx?$/.test(found.path)) return { path: found.path }
          return { path: pathToFileURL(found.path).href, external: true }
        }
        const own = fallback[args.path]
        // undefined: esbuild reports "Could not resolve" with the line and column.
        return own === undefined ? undefined : { path: own, external: true }
      })
    }
  }
}

/**
 * Gives each bundled file its own `import.meta.url`, `.dirname` and `.filename` (the bundle itself
 * lives elsewhere), as Vite does for vite.config.ts: `new URL('./cert.pem', import.meta.url)` works.
 */
const fileScope: Plugin = {
  name: 'proxyctl-file-scope',
  setup (build) {
    build.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async (args) => {
      const source = await fs.promises.readFile(args.path, 'utf8')
      // On the first line, so the source map's line numbers stay as they are.
      const scope = `const __proxyctl_url = ${JSON.stringify(pathToFileURL(args.path).href)}, __proxyctl_dirname = ${JSON.stringify(path.dirname(args.path))}, __proxyctl_filename = ${JSON.stringify(args.path)};`
      const loader = /\.[cm]?ts$/.test(args.path) ? 'ts' : /\.[jt]sx$/.test(args.path) ? args.path.slice(-3) as 'jsx' | 'tsx' : 'js'
      return { contents: scope + source, loader }
    })
  }
}

/**
 * Imports a TypeScript config as Vite imports vite.config.ts: esbuild bundles the config and
 * the local files it imports into one ES module, Node imports that, and the file is removed.
 * Packages stay imports (see resolvePackages), so the config and the CLI share one copy of
 * proxyctl. The bundle goes to the OS temporary folder, not beside the config: that folder may
 * be read-only. esbuild's service process is stopped afterwards: loading costs no memory while
 * serving.
 */
async function importTypeScript (file: string, options: LoadConfigOptions): Promise<unknown> {
  const esbuild = await import('esbuild')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxyctl-config-'))
  try {
    const out = path.join(dir, `${path.basename(file)}.mjs`)
    let code: string
    try {
      const result = await esbuild.build({
        entryPoints: [file],
        bundle: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        // Node's conditions for import (import, node, default): not esbuild's extra `module`.
        conditions: [],
        define: { 'import.meta.url': '__proxyctl_url', 'import.meta.dirname': '__proxyctl_dirname', 'import.meta.filename': '__proxyctl_filename' },
        plugins: [resolvePackages(options.fallbackPackages ?? {}), fileScope],
        outfile: out,
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
    fs.writeFileSync(out, code)
    return await import(pathToFileURL(out).href)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Imports a config module and resolves it. TypeScript needs no build step from the user. */
export async function loadConfigFile (file: string, options: LoadConfigOptions = {}): Promise<ResolvedConfig> {
  const abs = path.resolve(file)
  if (!fs.existsSync(abs)) throw new ConfigLoadError(file, 'no such file')
  let mod: unknown
  try {
    const url = pathToFileURL(abs).href + (options.previous === undefined ? '' : `?reload=${++reloads}`)
    mod = /\.(c|m)?js$/.test(abs) ? await import(url) : await importTypeScript(abs, options)
  } catch (err) {
    const e = err as Error
    const message = (e.message || String(err)).split('\n').filter((l) => l.trim() !== '').slice(0, 6).join('\n')
    throw new ConfigLoadError(file, `cannot load config: ${message}`, { cause: err })
  }
  const config = (mod as { default?: unknown } | undefined)?.default
  if (config === undefined || config === null || typeof config !== 'object') {
    throw new ConfigLoadError(file, 'the config module must `export default defineConfig({ ... })`')
  }
  let resolved: ResolvedConfig
  try {
    resolved = resolveConfig(config, { file: abs, ...(options.previous === undefined ? {} : { previous: options.previous }) })
  } catch (err) {
    if (err instanceof ConfigErrors) err.setFile(abs)
    throw err
  }
  await runPreflight(resolved)
  return resolved
}
