import { runPreflight } from '../config/preflight.js'
import type { FastifyBaseLogger } from 'fastify'
import { fstatSync } from 'node:fs'
import net from 'node:net'
import { pino } from 'pino'
import type { ResolvedConfig } from '../config/model.js'
import { buildApp, type ProxyApp } from './app.js'
import { bindListener, closeListeners, type BoundListener } from './listeners.js'

export interface RunningProxy {
  readonly app: ProxyApp
  readonly listeners: readonly BoundListener[]
  /** Graceful stop: stop accepting, drain in-flight requests (bounded by `shutdownTimeout`), close plugins. */
  close (graceMs?: number): Promise<void>
}

export interface StartOptions {
  /** A pino logger, or `false` for none. Default: pino at the config's `logLevel`. */
  logger?: FastifyBaseLogger | false
  /** Log "listening on" per address. Default true; cluster workers leave it to the primary. */
  announce?: boolean
}

/**
 * The default logger: JSON lines on stdout. When stdout is a pipe or socket, writes go through a
 * non-blocking socket: a reader that stops reading must not block the event loop (serving, and
 * even SIGTERM handling, as a synchronous write would), and a reader that went away (EPIPE) only
 * ends logging. Past 1 MiB waiting to be read, lines are dropped. `flushLogs()` waits (briefly)
 * for what is queued, before exiting.
 */
export function stdoutLogger (level: string): FastifyBaseLogger {
  let out: NodeJS.WritableStream & { writableLength?: number } = process.stdout
  try {
    const st = fstatSync(1)
    if (st.isFIFO() || st.isSocket()) out = new net.Socket({ fd: 1, readable: false, writable: true })
  } catch { /* no stdout: keep process.stdout */ }
  let broken = false
  out.on('error', () => { broken = true })
  logSink = out
  const stream = {
    write (line: string): void {
      if (!broken && (out.writableLength ?? 0) < 1 << 20) out.write(line)
    }
  }
  return pino({ level }, stream) as unknown as FastifyBaseLogger
}

let logSink: NodeJS.WritableStream | undefined

/** Resolves when queued log lines are written (or after `ms`, whichever comes first). */
export function flushLogs (ms = 500): Promise<void> {
  const sink = logSink as (NodeJS.WritableStream & { writableLength?: number }) | undefined
  if (sink === undefined || sink === process.stdout || (sink.writableLength ?? 0) === 0) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    sink.once('drain', () => { clearTimeout(timer); resolve() })
  })
}

/**
 * Builds the app and binds every listen address. If any address cannot be bound, the ones
 * already bound are closed and the ListenError is thrown.
 */
export async function startProxy (config: ResolvedConfig, options: StartOptions = {}): Promise<RunningProxy> {
  await runPreflight(config)
  const app = await buildApp(config, { logger: options.logger ?? stdoutLogger(config.logLevel) })
  const listeners: BoundListener[] = []
  try {
    for (const listen of config.listens) listeners.push(await bindListener(app, listen))
  } catch (err) {
    await closeListeners(listeners, 0)
    await app.fastify.close()
    throw err
  }
  for (const l of options.announce === false ? [] : listeners) {
    app.fastify.log.info({ address: l.url, servers: l.listen.servers.map((s) => s.primaryName || s.keyPath) }, `listening on ${l.url}`)
  }
  let closing: Promise<void> | undefined
  return {
    app,
    listeners,
    close (graceMs = config.shutdownTimeout) {
      closing ??= (async () => {
        await closeListeners(listeners, graceMs)
        await app.fastify.close()
      })()
      return closing
    }
  }
}
