import type { LocationHandler } from '../config/types.js'
import { CONTENT_TYPE, renderText } from '../metrics/registry.js'
import { defineHandler } from './define-handler.js'

/**
 * Serves this process's metrics in Prometheus's text format at a location of a proxied server,
 * as nginx's `stub_status` answers where a location asks for it. Turns the request metrics on.
 * With `workers`, each answer is one worker's figures: `metrics.listen` has them all.
 */
export function metrics (): LocationHandler {
  return defineHandler('metrics', (env) => {
    const m = env.config.metrics
    m.on = true
    return {
      handle (_request, reply) {
        return reply.code(200).header('content-type', CONTENT_TYPE).header('cache-control', 'no-store').send(renderText(m.registry.snapshot()))
      }
    }
  })
}
