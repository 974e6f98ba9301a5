import { runPreflight } from '../config/preflight.js'
import type { FastifyBaseLogger } from 'fastify'
import { isDeepStrictEqual } from 'node:util'
import { defaultLogFormat, stdoutLogger, type LogFormatName } from '../log/stdout.js'
import { openAccessLogs, type AccessLogs } from '../log/access-logs.js'
import type { ResolvedConfig } from '../config/model.js'
import { buildApp, type ProxyApp } from './app.js'
import { bindListener, closeListeners, swapRefusal, type BoundListener } from './listeners.js'
import { answerPrimary, startMetricsServer, type MetricsServer } from '../metrics/server.js'
import { reloadCounter, setGeneration } from '../metrics/proxy-metrics.js'
import { ConfigError, ConfigErrors } from '../errors.js'
import cluster from 'node:cluster'

export interface RunningProxy {
  /** The app of the config in force (a reload replaces it). */
  readonly app: ProxyApp
  readonly config: ResolvedConfig
  readonly listeners: readonly BoundListener[]
  /** The `metrics.listen` listener (its URL), when this process serves it (not a cluster worker: the primary does). */
  readonly metrics: { readonly url: string } | undefined
  /**
   * Serves `next` (a config resolved with `previous: this.config`) in place of the config in
   * force: see README "Reload". Resolves once new requests reach the new app; requests in flight
   * finish on the old one, which is closed after them (bounded by `shutdownTimeout`). Throws
   * (ConfigErrors, ListenError) when `next` cannot be served; the config in force keeps serving.
   */
  reload (next: ResolvedConfig): Promise<void>
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

/** A reload cannot move the metrics listener (bound once, by this process or the primary). */
export function metricsListenRefusal (before: ResolvedConfig, next: ResolvedConfig): ConfigError | undefined {
  if (isDeepStrictEqual(next.metrics.listen, before.metrics.listen)) return undefined
  return new ConfigError('metrics.listen', 'the metrics listener is bound already: changing it needs a restart (proxyctl start), not a reload')
}

/** One config's app, its access logs and its Redis links: what a reload builds and later closes. */
interface Generation {
  readonly config: ResolvedConfig
  readonly app: ProxyApp
  readonly accessLogs: AccessLogs
}

/** Closes a generation's app (its plugins' onClose: pools and tunnels not handed over), logs and links. */
async function closeGeneration (g: Generation): Promise<void> {
  await g.app.fastify.close()
  g.accessLogs.close()
  for (const link of g.config.limitZones.redis.values()) link.close()
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
  const defaultLog = defaults ? (logFormat === 'pretty' ? 'combined' : 'json') : false

  /** The app of `c`, its access logs open and its Redis links connected; nothing left open when it throws. */
  const generation = async (c: ResolvedConfig): Promise<Generation> => {
    const accessLogs = openAccessLogs(c, logger === false ? undefined : logger, defaultLog)
    let app: ProxyApp
    try {
      app = await buildApp(c, { logger, accessLogs })
    } catch (err) {
      accessLogs.close()
      throw err
    }
    // Shared limit zones connect before serving (serving starts even when Redis does not answer).
    for (const link of c.limitZones.redis.values()) await link.open(app.fastify.log)
    return { config: c, app, accessLogs }
  }

  let current = await generation(config)
  let listeners: BoundListener[] = []
  try {
    for (const listen of config.listens) listeners.push(await bindListener(current.app, listen))
  } catch (err) {
    await closeListeners(listeners, 0)
    await closeGeneration(current)
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
    await closeGeneration(current)
    throw err
  }
  const log = current.app.fastify.log
  if (metrics !== undefined) log.info({ address: metrics.url }, `metrics and status page on ${metrics.url}`)
  const announce = (bound: readonly BoundListener[]): void => {
    for (const l of options.announce === false ? [] : bound) {
      log.info({ address: l.url, servers: l.listen.servers.map((s) => s.primaryName || s.keyPath) }, `listening on ${l.url}`)
    }
  }
  announce(listeners)

  /** Old generations still finishing their requests; close() waits for them. */
  const retiring = new Set<Promise<void>>()
  let reloading: Promise<void> = Promise.resolve()
  let closing: Promise<void> | undefined

  const reloadNow = async (next: ResolvedConfig): Promise<void> => {
    if (closing !== undefined) throw new Error('the proxy is stopping')
    const before = current
    const kept = new Map<BoundListener, (typeof next.listens)[number]>()
    const refusals: ConfigError[] = []
    for (const nl of next.listens) {
      const bound = listeners.find((l) => l.listen.key === nl.key)
      if (bound === undefined) continue
      const why = swapRefusal(bound.listen, nl)
      if (why === undefined) { kept.set(bound, nl); continue }
      refusals.push(new ConfigError(`${nl.servers[0]?.keyPath ?? 'servers'}.listen`,
        `${nl.key} is bound already: changing its ${why} needs a restart (proxyctl start), not a reload`))
    }
    // With workers the primary holds the metrics listener and checks it (cluster.ts).
    const metricsMoved = cluster.isWorker ? undefined : metricsListenRefusal(before.config, next)
    if (metricsMoved !== undefined) refusals.push(metricsMoved)
    if (refusals.length > 0) {
      const e = new ConfigErrors(refusals)
      if (next.file !== undefined) e.setFile(next.file)
      throw e
    }
    // Objects the new config took over from the old (env.carry) stay the old app's until the swap.
    const takenOver = [...next.carried.values()].map((c) => c.value).filter((v) => [...before.config.carried.values()].some((c) => c.value === v))
    let fresh: Generation
    try {
      fresh = await generation(next)
    } catch (err) {
      for (const v of takenOver) next.handedOver.add(v)
      throw err
    }
    const added: BoundListener[] = []
    try {
      for (const nl of next.listens) if (![...kept.values()].includes(nl)) added.push(await bindListener(fresh.app, nl))
    } catch (err) {
      await closeListeners(added, 0)
      for (const v of takenOver) next.handedOver.add(v)
      await closeGeneration(fresh)
      throw err
    }
    // The swap: from here new requests (on new and kept connections alike) reach the new app.
    for (const v of takenOver) before.config.handedOver.add(v)
    const removed = listeners.filter((l) => !kept.has(l))
    const drained = [...kept].map(([l, nl]) => l.swap(fresh.app, nl, before.config.shutdownTimeout))
    listeners = next.listens.map((nl) => [...kept].find(([, k]) => k === nl)?.[0] ?? added.find((l) => l.listen === nl) as BoundListener)
    current = fresh
    if (next.metrics.on) setGeneration(next.metrics.registry, next.metrics.generation)
    announce(added)
    for (const l of removed) fresh.app.fastify.log.info({ address: l.url }, `reload: ${l.url} is no longer in the config, closing it`)
    drained.push(closeListeners(removed, before.config.shutdownTimeout))
    const retired = Promise.all(drained).then(async () => { await closeGeneration(before) }).catch((err: unknown) => {
      fresh.app.fastify.log.error({ code: 'PROXYCTL_INTERNAL_ERROR', err }, 'error while closing the config before the reload')
    })
    retiring.add(retired)
    void retired.finally(() => retiring.delete(retired))
  }

  return {
    get app () { return current.app },
    get config () { return current.config },
    get listeners () { return listeners },
    metrics,
    reload (next) {
      // One reload at a time: each builds on the config the one before left in force.
      const counted = reloadCounter(next.metrics.registry)
      const run = reloading.then(async () => { await reloadNow(next) })
      reloading = run.then(() => { counted.ok.inc() }, () => { counted.failed.inc() })
      return run
    },
    close (graceMs = current.config.shutdownTimeout) {
      closing ??= (async () => {
        await reloading
        stopAnswering?.()
        await Promise.all([closeListeners(listeners, graceMs), metrics?.close()])
        await Promise.all(retiring)
        await closeGeneration(current)
      })()
      return closing
    }
  }
}
