import { runPreflight } from '../config/preflight.js'
import type { FastifyBaseLogger } from 'fastify'
import { defaultLogFormat, stdoutLogger, type LogFormatName } from '../log/stdout.js'
import { openAccessLogs } from '../log/access-logs.js'
import type { ResolvedConfig } from '../config/model.js'
import { buildApp, type ProxyApp } from './app.js'
import { bindListener, closeListeners, type BoundListener } from './listeners.js'
import { answerPrimary, startMetricsServer, type MetricsServer } from '../metrics/server.js'
import cluster from 'node:cluster'

export interface RunningProxy {
  readonly app: ProxyApp
  readonly listeners: readonly BoundListener[]
  /** The `metrics.listen` listener (its URL), when this process serves it (not a cluster worker: the primary does). */
  readonly metrics: { readonly url: string } | undefined
  /** Graceful stop: stop accepting, drain in-flight requests (bounded by `shutdownTimeout`), close plugins. */
  close (graceMs?: number): Promise<void>
}

export interface StartOptions {
  /** A pino logger, or `false` for none. Default: pino at the config's `logLevel`. */
  logger?: FastifyBaseLogger | false
  /** Log "listening on" per address. Default true; cluster workers leave it to the primary. */
  announce?: boolean
  /** The default logger's line format (ignored with `logger`). Default: `pretty` on a terminal, else `json`. */
  logFormat?: LogFormatName
  /**
   * Whether the access log is on where the config does not set `accessLog` (to stdout, in the
   * form of the other lines there: `combined` beside pretty lines, `json` beside JSON ones).
   * Default: on with the default logger (as `proxyctl start`), off when `logger` is given.
   */
  defaultAccessLog?: boolean
}

/**
 * Builds the app and binds every listen address. If any address cannot be bound, the ones
 * already bound are closed and the ListenError is thrown.
 */
export async function startProxy (config: ResolvedConfig, options: StartOptions = {}): Promise<RunningProxy> {
  await runPreflight(config)
  const logFormat = options.logFormat ?? defaultLogFormat()
  const logger = options.logger ?? stdoutLogger(config.logLevel, logFormat)
  const defaults = options.defaultAccessLog ?? options.logger === undefined
  const accessLogs = openAccessLogs(config, logger === false ? undefined : logger, defaults ? (logFormat === 'pretty' ? 'combined' : 'json') : false)
  let app: ProxyApp
  try {
    app = await buildApp(config, { logger, accessLogs })
  } catch (err) {
    accessLogs.close()
    throw err
  }
  // Shared limit zones connect before serving (serving starts even when Redis does not answer).
  for (const link of config.limitZones.redis.values()) await link.open(app.fastify.log)
  const closeLinks = (): void => { for (const link of config.limitZones.redis.values()) link.close() }
  const listeners: BoundListener[] = []
  try {
    for (const listen of config.listens) listeners.push(await bindListener(app, listen))
  } catch (err) {
    await closeListeners(listeners, 0)
    await app.fastify.close()
    accessLogs.close()
    closeLinks()
    throw err
  }
  // A worker's figures go to the primary, which serves them with every other worker's.
  let metrics: MetricsServer | undefined
  let stopAnswering: (() => void) | undefined
  try {
    if (cluster.isWorker) stopAnswering = answerPrimary(config)
    else metrics = await startMetricsServer(config, () => Promise.resolve(config.metrics.registry.snapshot()))
  } catch (err) {
    await closeListeners(listeners, 0)
    await app.fastify.close()
    accessLogs.close()
    throw err
  }
  if (metrics !== undefined) app.fastify.log.info({ address: metrics.url }, `metrics and status page on ${metrics.url}`)
  for (const l of options.announce === false ? [] : listeners) {
    app.fastify.log.info({ address: l.url, servers: l.listen.servers.map((s) => s.primaryName || s.keyPath) }, `listening on ${l.url}`)
  }
  let closing: Promise<void> | undefined
  return {
    app,
    listeners,
    metrics,
    close (graceMs = config.shutdownTimeout) {
      closing ??= (async () => {
        stopAnswering?.()
        await Promise.all([closeListeners(listeners, graceMs), metrics?.close()])
        await app.fastify.close()
        accessLogs.close()
        closeLinks()
      })()
      return closing
    }
  }
}
