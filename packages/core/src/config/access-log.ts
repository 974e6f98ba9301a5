/**
 * access_log and log_format, as nginx reads them: formats named once at the top level, a
 * destination and a format per level, inherited by what a level encloses unless it sets its own.
 */
import path from 'node:path'
import { ConfigError } from '../errors.js'
import { COMBINED, JSON_FORMAT, compileLogFormat, type LogEscape, type LogFormat, type ResolvedAccessLog } from '../log/access-log.js'
import type { CompileScope } from '../variables/types.js'
import type { AccessLogConfig, ProxyConfig } from './types.js'

export interface LogFormats {
  readonly byName: ReadonlyMap<string, LogFormat>
  readonly baseDir: string
  /** Where inline templates compile (maps, named captures). */
  readonly scope: CompileScope
  /** The same destination and format share one resolved object (and one sink). */
  readonly cache: Map<string, ResolvedAccessLog>
}

/** The built-in formats and the config's `logFormats`, compiled. */
export function compileLogFormats (config: ProxyConfig, baseDir: string, scope: CompileScope, errors: ConfigError[]): LogFormats {
  const byName = new Map<string, LogFormat>()
  byName.set('combined', compileLogFormat('combined', COMBINED, 'default', scope))
  byName.set('json', compileLogFormat('json', JSON_FORMAT, 'json', scope))
  for (const [name, spec] of Object.entries(config.logFormats ?? {})) {
    const source = typeof spec === 'string' ? spec : spec.format
    const escape: LogEscape = typeof spec === 'string' ? 'default' : spec.escape ?? 'default'
    if (name === 'combined' || name === 'json') { errors.push(new ConfigError(`logFormats.${name}`, `duplicate log_format name "${name}" (a built-in format)`)); continue }
    try { byName.set(name, compileLogFormat(name, source, escape, scope)) } catch (err) {
      errors.push(new ConfigError(`logFormats.${name}`, (err as Error).message))
    }
  }
  return { byName, baseDir, scope, cache: new Map() }
}

/** The default where nothing sets accessLog: combined to stdout, on for `proxyctl start` (start.ts decides). */
export function defaultAccessLog (formats: LogFormats): ResolvedAccessLog {
  return { path: 'stdout', format: formats.byName.get('combined') as LogFormat, isDefault: true, sink: undefined }
}

/** A level's accessLog over the one it inherits (`outer`); null: off. */
export function resolveAccessLog (own: AccessLogConfig | undefined, outer: ResolvedAccessLog | null, formats: LogFormats,
  keyPath: string, errors: ConfigError[]): ResolvedAccessLog | null {
  if (own === undefined) return outer
  if (own === false) return null
  const spec = own === true ? {} : typeof own === 'string' ? { path: own } : own
  const dest = spec.path === undefined || spec.path === 'stdout' || spec.path === '/dev/stdout' ? 'stdout' : path.resolve(formats.baseDir, spec.path)
  let format = formats.byName.get(spec.format ?? 'combined')
  if (format === undefined) {
    if (spec.format === undefined || !spec.format.includes('$')) {
      errors.push(new ConfigError(`${keyPath}.format`, `unknown log format "${spec.format ?? ''}" (combined, json, or a name in logFormats; a template has $variables)`))
      return outer
    }
    try { format = compileLogFormat(keyPath, spec.format, 'default', formats.scope) } catch (err) {
      errors.push(new ConfigError(`${keyPath}.format`, (err as Error).message))
      return outer
    }
  }
  const key = `${dest}\0${format.source}\0${format.escape}`
  let resolved = formats.cache.get(key)
  if (resolved === undefined) {
    resolved = { path: dest, format, isDefault: false, sink: undefined }
    formats.cache.set(key, resolved)
  }
  return resolved
}

