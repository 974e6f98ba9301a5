import { startProxy, type ResolvedConfig, type RunningProxy } from '@proxyctl/core'
import { answerReloads, isClusterWorker, reloadCounter, runPrimary, stdoutLogger, flushLogs, workerCount, type LogFormatName, type ReloadOutcome } from '@proxyctl/core/internal'
import { loadConfig } from '../load.js'
import { configPath, failureLines, reportFailure } from '../report.js'
import { defaultPidFile, PidFile } from '../pid-file.js'

/**
 * `proxyctl start`: serve until SIGTERM/SIGINT, then drain and exit 0. SIGHUP reloads the
 * config file (README "Reload"); the pid file and its status file tell `proxyctl reload` how it went.
 */
export async function start (configOption: string | undefined, logFormat?: LogFormatName, pidFileOption?: string): Promise<number> {
  let config: ResolvedConfig | undefined
  // Reloads asked for before the proxy serves wait for it (a signal or message is never lost, nor fatal).
  let serving: (proxy: RunningProxy) => void = () => {}
  const ready = new Promise<RunningProxy>((resolve) => { serving = resolve })
  let stopping = false
  let pidFile: PidFile | undefined
  try {
    const file = configPath(configOption)
    if (isClusterWorker()) {
      // The primary coordinates reloads: a SIGHUP that reaches a worker (a terminal's hangup) is not one.
      process.on('SIGHUP', () => {})
      answerReloads(async () => await reloadOnce(await ready, file, stopping))
    }
    config = await loadConfig(file)
    pidFile = isClusterWorker() ? undefined : new PidFile(pidFileOption ?? defaultPidFile(file), pidFileOption !== undefined)
    let reloads = 0
    /** The status `proxyctl reload` waits for, after each SIGHUP. */
    const report = (outcome: ReloadOutcome, generation: number): void => {
      pidFile?.status({ pid: process.pid, generation, reloads: ++reloads, last: outcome.ok ? { ok: true, errors: [] } : { ok: false, errors: outcome.errors } })
    }
    if (workerCount(config) > 1 && !isClusterWorker()) {
      const log = stdoutLogger(config.logLevel, logFormat)
      for (const w of config.warnings) log.warn({ code: 'PROXYCTL_CONFIG_WARNING' }, w)
      let generation = 1
      await runPrimary(config, log, {
        load: async (previous) => await loadConfig(file, previous),
        describe: failureLines,
        done: (outcome) => {
          if (outcome.ok) generation = outcome.generation
          report(outcome, generation)
        },
        // Before the first "listening on": whoever reads the pid file then may signal at once.
        listening: () => {
          pidFile?.write({ pid: process.pid, generation: 1, reloads: 0 })
          if (pidFile?.problem !== undefined) log.warn({ code: 'PROXYCTL_CONFIG_WARNING' }, pidFile.problem)
        }
      })
      log.info('stopped')
      pidFile?.remove()
      await flushLogs()
      process.exit(0)
    }
    if (!isClusterWorker()) {
      let chain = Promise.resolve()
      process.on('SIGHUP', () => {
        chain = chain.then(async () => {
          const proxy = await ready
          if (stopping) return
          proxy.app.fastify.log.info({ signal: 'SIGHUP', file }, `SIGHUP: reloading ${file}`)
          report(await reloadOnce(proxy, file, stopping), proxy.config.metrics.generation)
        })
      })
      // Written before the first "listening on" line; removed if the start fails.
      pidFile?.write({ pid: process.pid, generation: config.metrics.generation, reloads: 0 })
    }
    const proxy = await startProxy(config, { announce: !isClusterWorker(), ...(logFormat !== undefined ? { logFormat } : {}) })
    serving(proxy)
    const log = proxy.app.fastify.log
    if (!isClusterWorker()) for (const w of config.warnings) log.warn({ code: 'PROXYCTL_CONFIG_WARNING' }, w)
    if (pidFile?.problem !== undefined) log.warn({ code: 'PROXYCTL_CONFIG_WARNING' }, pidFile.problem)
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return
      stopping = true
      log.info({ signal }, `${signal}: stopping, in-flight requests get ${proxy.config.shutdownTimeout} ms`)
      proxy.close().then(async () => {
        log.info('stopped')
        pidFile?.remove()
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
    pidFile?.remove()
    return reportFailure(err, config)
  }
}

/** Loads the config file anew and serves it in place of the one in force; on any error the old one keeps serving and the errors are logged. */
async function reloadOnce (proxy: RunningProxy, file: string, stopping: boolean): Promise<ReloadOutcome> {
  const log = proxy.app.fastify.log
  if (stopping) return { ok: false, errors: ['the proxy is stopping'] }
  const before = proxy.config
  let next: ResolvedConfig | undefined
  try {
    next = await loadConfig(file, before)
  } catch (err) {
    // proxy.reload counts its own outcomes; a config that does not load never reaches it.
    reloadCounter(before.metrics.registry).failed.inc()
    return failed(log, err, before)
  }
  try {
    await proxy.reload(next)
  } catch (err) {
    return failed(log, err, next)
  }
  for (const w of next.warnings) log.warn({ code: 'PROXYCTL_CONFIG_WARNING' }, w)
  log.info({ generation: next.metrics.generation, file }, `reload: generation ${next.metrics.generation} serves`)
  return { ok: true, generation: next.metrics.generation }
}

function failed (log: RunningProxy['app']['fastify']['log'], err: unknown, config: ResolvedConfig): ReloadOutcome {
  const errors = failureLines(err, config)
  const code = (err as { code?: string }).code ?? 'PROXYCTL_CONFIG_INVALID'
  for (const e of errors) log.error({ code, reason: e }, `reload failed, the config before keeps serving: ${e}`)
  return { ok: false, errors }
}
