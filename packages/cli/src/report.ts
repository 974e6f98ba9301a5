import path from 'node:path'
import { ConfigErrors, ConfigLoadError, ListenError, ProxyctlError, type ResolvedConfig } from '@proxyctl/core'
import { findConfigFile } from '@proxyctl/core/internal'

/** Resolves `--config`, or finds the default file in the working directory. */
export function configPath (given: string | undefined): string {
  if (given !== undefined) return path.resolve(given)
  const found = findConfigFile(process.cwd())
  if (found === undefined) {
    throw new ConfigLoadError(path.join(process.cwd(), 'proxy.config.ts'), 'no config found (looked for proxy.config.ts, .mts, .js, .mjs); run `proxyctl init` to write one')
  }
  return found
}

/** Names the key path of the first server listening on an address a ListenError is about. */
export function listenKeyPath (config: ResolvedConfig, address: string): string {
  const listen = config.listens.find((l) => l.key === address)
  const server = listen?.servers[0]
  return server === undefined ? '' : `${server.keyPath}.listen: `
}

/** A failure as the lines a user wants: one per problem naming file and key path. */
export function failureLines (err: unknown, config?: ResolvedConfig): string[] {
  if (err instanceof ConfigErrors) return err.errors.map((e) => e.format())
  if (err instanceof ListenError && config !== undefined) return [`${config.file ?? ''}: ${listenKeyPath(config, err.address)}${err.message}`]
  if (err instanceof ProxyctlError) return [err.message]
  return [(err as Error)?.message ?? String(err)]
}

/**
 * Prints a failure the way a user wants it: one line per problem naming file and key path,
 * no stack trace (set PROXYCTL_DEBUG=1 for one). Returns the exit code.
 */
export function reportFailure (err: unknown, config?: ResolvedConfig): number {
  for (const line of failureLines(err, config)) process.stderr.write(`proxyctl: ${line}\n`)
  if (process.env.PROXYCTL_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`)
  return 1
}
