import cluster, { type Worker } from 'node:cluster'
import fs from 'node:fs'
import os from 'node:os'
import type { ResolvedConfig } from '../config/model.js'
import { socketInUse } from './listeners.js'
import { askWorkers, startMetricsServer } from '../metrics/server.js'
import { metricsListenRefusal } from './start.js'
import { ConfigErrors } from '../errors.js'

export interface ClusterLogger {
  info (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

/** How a reload ended, in one process or over every worker. */
export type ReloadOutcome = { readonly ok: true, readonly generation: number } | { readonly ok: false, readonly errors: readonly string[] }

/** What the primary does on SIGHUP besides asking the workers (the CLI's: loading, the pid file). */
export interface PrimaryReload {
  /** Loads and validates the config file again; throws with its errors (`describe` words them). */
  load (previous: ResolvedConfig): Promise<ResolvedConfig>
  describe (err: unknown, config: ResolvedConfig): string[]
  /** After each SIGHUP, once every worker answered. */
  done (outcome: ReloadOutcome): void
  /** Once the primary takes SIGHUP, before any worker listens (the pid file goes there). */
  listening (): void
}

const RELOAD = 'proxyctl:reload'
const RELOADED = 'proxyctl:reloaded'
const LISTENS_FOR_RELOADS = 'proxyctl:reloadable'

/**
 * A worker: reloads when the primary asks, and says how it went. Called before the worker loads
 * its config; a message sent before it would be lost, so the primary asks only workers that said
 * they listen (one that did not has not read the config file yet, and will read it as it is).
 */
export function answerReloads (reload: () => Promise<ReloadOutcome>): void {
  process.on('message', (msg: { type?: string, id?: number }) => {
    if (msg?.type !== RELOAD) return
    void reload().then((outcome) => { process.send?.({ type: RELOADED, id: msg.id, outcome }) })
  })
  process.send?.({ type: LISTENS_FOR_RELOADS })
}

const reloadable = new WeakSet<Worker>()

let lastReloadId = 0

/** Asks one worker to reload; a worker that exits first has failed. */
function askReload (w: Worker): Promise<ReloadOutcome> {
  if (!reloadable.has(w)) return Promise.resolve({ ok: true, generation: 0 })
  const id = ++lastReloadId
  return new Promise((resolve) => {
    const onMessage = (msg: { type?: string, id?: number, outcome?: ReloadOutcome }): void => {
      if (msg?.type !== RELOADED || msg.id !== id || msg.outcome === undefined) return
      done(msg.outcome)
    }
    const onExit = (): void => { done({ ok: false, errors: [`worker ${w.process.pid ?? '?'} exited during the reload`] }) }
    const done = (o: ReloadOutcome): void => {
      w.off('message', onMessage)
      w.off('exit', onExit)
      resolve(o)
    }
    w.on('message', onMessage)
    w.once('exit', onExit)
    w.send({ type: RELOAD, id })
  })
}

/** Whether any level logs to a file (which SIGUSR1 reopens). */
function hasLogFiles (config: ResolvedConfig): boolean {
  const all = [config.accessLog, ...config.servers.flatMap((s) => [s.accessLog, ...s.all.map((l) => l.accessLog)])]
  return all.some((e) => e !== null && e.path !== 'stdout')
}

/** `workers: 'auto'` is one per core. */
export function workerCount (config: ResolvedConfig): number {
  return config.workers === 'auto' ? Math.max(1, os.availableParallelism()) : config.workers
}

/** True in a process forked by `runPrimary`. */
export function isClusterWorker (): boolean {
  return cluster.isWorker
}

/** Removes socket files left by a dead proxyctl, before the workers (who share the primary's handle) listen. */
async function clearStaleSockets (config: ResolvedConfig): Promise<void> {
  for (const l of config.listens) {
    if (l.kind !== 'unix' || !fs.existsSync(l.path)) continue
    if (!await socketInUse(l.path)) fs.unlinkSync(l.path)
  }
}

/**
 * The primary of `workers: N`: forks N processes that each run the whole proxy on the same
 * listeners (node:cluster shares the sockets), restarts a worker that dies (with a log line),
 * and on SIGTERM/SIGINT tells every worker to drain, exiting 0 when all have. On SIGHUP it
 * validates the config file itself, then has every worker reload at once (each keeps its
 * listeners and swaps its app, as one process does); the reload is done when all have.
 */
export async function runPrimary (config: ResolvedConfig, log: ClusterLogger, reload?: PrimaryReload): Promise<void> {
  const count = workerCount(config)
  await clearStaleSockets(config)
  let stopping = false
  const announced = new Set<string>()
  const recentCrashes: number[] = []

  const fork = (): Worker => {
    const w = cluster.fork()
    w.on('message', (msg: { type?: string }) => { if (msg?.type === LISTENS_FOR_RELOADS) reloadable.add(w) })
    w.on('listening', (addr) => {
      const key = addr.addressType === -1 ? `unix:${String(addr.address)}` : `${addr.address}:${addr.port}`
      if (announced.has(key)) return
      announced.add(key)
      const listen = config.listens.find((l) => l.kind === 'unix' ? `unix:${l.path}` === key : l.port === addr.port)
      const url = listen?.kind === 'unix' ? key : `${listen?.scheme ?? 'http'}://${addr.addressType === 6 ? `[${addr.address}]` : addr.address}:${addr.port}`
      log.info({ address: url, workers: count }, `listening on ${url}`)
    })
    return w
  }

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return
    const now = Date.now()
    recentCrashes.push(now)
    while (recentCrashes.length > 0 && now - (recentCrashes[0] as number) > 10_000) recentCrashes.shift()
    // A worker that dies at once, again and again, is a bug to show, not to loop on.
    const delay = recentCrashes.length > count * 3 ? 2000 : 100
    log.error({ worker: worker.id, pid: worker.process.pid, code, signal }, `worker ${worker.process.pid} exited (${signal ?? `code ${code}`}); starting a new one`)
    setTimeout(() => { if (!stopping) fork() }, delay).unref()
  })

  const reloadWorkers = async (r: PrimaryReload): Promise<ReloadOutcome> => {
    log.info({ signal: 'SIGHUP', file: config.file }, `SIGHUP: reloading ${config.file ?? 'the config'} in ${Object.keys(cluster.workers ?? {}).length} workers`)
    let next: ResolvedConfig
    try {
      next = await r.load(config)
      const moved = metricsListenRefusal(config, next)
      if (moved !== undefined) {
        const e = new ConfigErrors([moved])
        if (next.file !== undefined) e.setFile(next.file)
        throw e
      }
    } catch (err) {
      const errors = r.describe(err, config)
      for (const e of errors) log.error({ code: (err as { code?: string }).code ?? 'PROXYCTL_CONFIG_INVALID', reason: e }, `reload failed, the config before keeps serving: ${e}`)
      return { ok: false, errors }
    }
    if (workerCount(next) !== count) log.info({ workers: workerCount(next) }, `reload: workers stays ${count} until a restart`)
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
    const outcomes = await Promise.all(workers.map(askReload))
    const errors = [...new Set(outcomes.flatMap((o) => o.ok ? [] : o.errors))]
    if (errors.length > 0) {
      for (const e of errors) log.error({ code: 'PROXYCTL_CONFIG_INVALID', reason: e }, `reload failed in a worker: ${e}`)
      return { ok: false, errors }
    }
    // Workers forked from now on load the file as it is now; the primary announces and clears by the new listens.
    config = next
    const generation = Math.max(...outcomes.map((o) => o.ok ? o.generation : 0))
    log.info({ generation, workers: workers.length }, `reload: generation ${generation} serves in ${workers.length} workers`)
    return { ok: true, generation }
  }

  if (reload !== undefined) {
    let chain = Promise.resolve()
    process.on('SIGHUP', () => { chain = chain.then(async () => { if (!stopping) reload.done(await reloadWorkers(reload)) }) })
    reload.listening()
  }

  // The primary serves the metrics listener, with every worker's figures.
  const metrics = await startMetricsServer(config, askWorkers)
  if (metrics !== undefined) log.info({ address: metrics.url, workers: count }, `metrics and status page on ${metrics.url}`)

  for (let i = 0; i < count; i++) fork()

  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return
      stopping = true
      log.info({ signal }, `${signal}: stopping ${Object.keys(cluster.workers ?? {}).length} workers`)
      void metrics?.close()
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
      if (workers.length === 0) { resolve(); return }
      let left = workers.length
      for (const w of workers) {
        w.once('exit', () => { if (--left === 0) resolve() })
        w.process.kill('SIGTERM')
      }
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
    // logrotate signals the primary: each worker reopens its own access log files. (Without
    // files, a worker has no SIGUSR1 listener and Node's would start its inspector: not sent.)
    if (hasLogFiles(config)) {
      process.on('SIGUSR1', () => {
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGUSR1')
      })
    }
  })
}
