import type { FastifyBaseLogger } from 'fastify'
import { pino } from 'pino'
import type { ResolvedConfig } from '../config/model.js'
import { ProxyctlError } from '../errors.js'
import { compileLogFormat, JSON_FORMAT, renderLine, type ResolvedAccessLog } from './access-log.js'
import { emptyScope } from '../variables/compile.js'

const JSON_LOG = compileLogFormat('json', JSON_FORMAT, 'json', emptyScope)
import type { ExchangeRecord } from './exchange-record.js'
import { LogSink } from './sink.js'

/** The access logs of one running app: a sink per destination, SIGUSR1 to reopen files. */
export interface AccessLogs {
  /** Whether any level logs: when none does, requests carry no listener at all. */
  readonly active: boolean
  readonly sinks: ReadonlyMap<string, LogSink>
  close (): void
}

/** Every access log in force anywhere in the config. */
function* entries (config: ResolvedConfig): Generator<ResolvedAccessLog | null> {
  yield config.accessLog
  for (const s of config.servers) {
    yield s.accessLog
    for (const l of s.all) yield l.accessLog
  }
}

/**
 * Binds each access log in force to its sink, opening files now (a file that cannot be opened
 * stops the start, as nginx's would). `defaults`: what the unconfigured default (stdout) writes,
 * or false for nothing.
 */
export function openAccessLogs (config: ResolvedConfig, logger: FastifyBaseLogger | undefined, defaults: 'combined' | 'json' | false): AccessLogs {
  const log = logger ?? (pino({ level: 'silent' }) as unknown as FastifyBaseLogger)
  const sinks = new Map<string, LogSink>()
  let active = false
  try {
    for (const e of entries(config)) {
      if (e === null) continue
      if (e.isDefault) {
        if (defaults === false) { e.sink = undefined; continue }
        if (defaults === 'json') e.format = JSON_LOG
      }
      let sink = sinks.get(e.path)
      if (sink === undefined) {
        try { sink = new LogSink(e.path, log) } catch (err) {
          throw new ProxyctlError('PROXYCTL_ACCESS_LOG_FAILED', `access log "${e.path}": ${(err as Error).message}`, { cause: err })
        }
        sinks.set(e.path, sink)
      }
      e.sink = sink
      active = true
    }
  } catch (err) {
    for (const s of sinks.values()) s.close()
    throw err
  }
  const files = [...sinks.values()].filter((s) => s.path !== 'stdout')
  // nginx reopens its log files on SIGUSR1 (what logrotate's postrotate sends).
  const reopen = (): void => {
    log.info({ files: files.map((s) => s.path) }, 'SIGUSR1: reopening access logs')
    for (const s of files) s.reopen()
  }
  if (files.length > 0) { process.on('SIGUSR1', reopen) }
  let closed = false
  return {
    active,
    sinks,
    close () {
      if (closed) return
      closed = true
      if (files.length > 0) { process.removeListener('SIGUSR1', reopen) }
      for (const s of sinks.values()) s.close()
    }
  }
}

/** Writes the access line of a finished request, in the log of the level that answered it. */
export function writeAccessLine (r: ExchangeRecord, fallback: ResolvedAccessLog | null): void {
  const ctx = r.ctx
  const entry = ctx === undefined ? fallback : ctx.location !== undefined ? ctx.location.accessLog : ctx.server.accessLog
  const sink = entry?.sink
  if (entry == null || sink === undefined) return
  sink.write(renderLine(entry.format, r))
}
