import cluster, { type Worker } from 'node:cluster'
import fs from 'node:fs'
import os from 'node:os'
import type { ResolvedConfig } from '../config/model.js'
import { socketInUse } from './listeners.js'
import { askWorkers, startMetricsServer } from '../metrics/server.js'

export interface ClusterLogger {
  info (obj: object, msg: string): void
  error (obj: object, msg: string): void
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
 * and on SIGTERM/SIGINT tells every worker to drain, exiting 0 when all have.
 */
export async function runPrimary (config: ResolvedConfig, log: ClusterLogger): Promise<void> {
  const count = workerCount(config)
  await clearStaleSockets(config)
  let stopping = false
  const announced = new Set<string>()
  const recentCrashes: number[] = []

  const fork = (): Worker => {
    const w = cluster.fork()
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
