import type { FastifyBaseLogger } from 'fastify'
import type { ResolvedConfig } from '../config/resolve.js'
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
 * Builds the app and binds every listen address. If any address cannot be bound, the ones
 * already bound are closed and the ListenError is thrown.
 */
export async function startProxy (config: ResolvedConfig, options: StartOptions = {}): Promise<RunningProxy> {
  const app = await buildApp(config, { logger: options.logger ?? { level: config.logLevel } })
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
