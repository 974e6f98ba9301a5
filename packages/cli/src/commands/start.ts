import { startProxy, type ResolvedConfig } from '@proxyctl/core'
import { isClusterWorker, runPrimary, stdoutLogger, flushLogs, workerCount, type LogFormatName } from '@proxyctl/core/internal'
import { loadConfig } from '../load.js'
import { configPath, reportFailure } from '../report.js'

/** `proxyctl start`: serve until SIGTERM/SIGINT, then drain and exit 0. */
export async function start (configOption: string | undefined, logFormat?: LogFormatName): Promise<number> {
  let config: ResolvedConfig | undefined
  try {
    config = await loadConfig(configPath(configOption))
    if (workerCount(config) > 1 && !isClusterWorker()) {
      const log = stdoutLogger(config.logLevel, logFormat)
      for (const w of config.warnings) log.warn({ code: 'PROXYCTL_CONFIG_WARNING' }, w)
      await runPrimary(config, log)
      log.info('stopped')
      await flushLogs()
      process.exit(0)
    }
    const proxy = await startProxy(config, { announce: !isClusterWorker(), ...(logFormat !== undefined ? { logFormat } : {}) })
    const log = proxy.app.fastify.log
    if (!isClusterWorker()) for (const w of config.warnings) log.warn({ code: 'PROXYCTL_CONFIG_WARNING' }, w)
    let stopping = false
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return
      stopping = true
      log.info({ signal }, `${signal}: stopping, in-flight requests get ${config?.shutdownTimeout ?? 0} ms`)
      proxy.close().then(async () => {
        log.info('stopped')
        await flushLogs()
        process.exit(0)
      }, async (err: unknown) => {
        log.error({ code: 'PROXYCTL_INTERNAL_ERROR', err }, 'error while stopping')
        await flushLogs()
        process.exit(1)
      })
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
    return 0
  } catch (err) {
    return reportFailure(err, config)
  }
}
