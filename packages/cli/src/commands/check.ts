import { type ResolvedConfig, type ResolvedLocation } from '@proxyctl/core'
import { probeListen } from '@proxyctl/core/internal'
import { loadConfig } from '../load.js'
import { configPath, reportFailure } from '../report.js'

/** `proxyctl check`: like `nginx -t`, validate everything and try each listen address. */
export async function check (configOption: string | undefined): Promise<number> {
  let config: ResolvedConfig | undefined
  try {
    config = await loadConfig(configPath(configOption))
    for (const listen of config.listens) await probeListen(listen)
  } catch (err) {
    return reportFailure(err, config)
  }
  process.stdout.write(describeConfig(config))
  for (const w of config.warnings) process.stdout.write(`warning: ${w}\n`)
  process.stdout.write(`proxyctl: ${config.file}: configuration is valid\n`)
  return 0
}

/** The resolved servers and location trees, as `proxyctl check` prints them. */
export function describeConfig (config: ResolvedConfig): string {
  const lines: string[] = []
  for (const server of config.servers) {
    const names = server.names.map(String).join(' ') || '""'
    lines.push(`server ${server.keyPath} ${names}`)
    for (const l of server.listens) {
      lines.push(`  listen ${l.key}${l.scheme === 'https' ? ' https' : ''}${l.defaultServer === server ? ' default' : ''}`)
    }
    const walk = (loc: ResolvedLocation, depth: number): void => {
      const pad = '  '.repeat(depth)
      lines.push(`${pad}location ${loc.key.padEnd(Math.max(1, 34 - pad.length))} ${loc.handler?.description ?? '(no handler: 404)'}`)
      for (const c of loc.children) walk(c, depth + 1)
    }
    for (const loc of server.locations) walk(loc, 2)
    for (const loc of server.named.values()) walk(loc, 2)
    lines.push(`    (no location matches)${' '.repeat(13)} ${server.fallback.handler.description}`)
  }
  for (const [name, u] of config.upstreams) {
    const servers = u.servers.map((s) => (typeof s === 'string' ? s : s.address)).join(', ')
    lines.push(`upstream ${name}: ${servers} (${typeof u.balance === 'function' ? 'custom' : JSON.stringify(u.balance ?? 'round-robin')})`)
  }
  return lines.join('\n') + '\n'
}
