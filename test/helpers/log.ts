/**
 * A logger object Fastify and proxyctl accept (`loggerInstance`, `startProxy({ logger })`) that
 * keeps every line, with its child bindings, in `lines`. `onLine` runs as a line is logged (to
 * snapshot state at that moment).
 */
import type { FastifyBaseLogger } from 'fastify'

export type LogLine = Record<string, unknown> & { level: string, msg: string }

export function captureLogger (onLine?: (line: LogLine) => void): { logger: FastifyBaseLogger, lines: LogLine[] } {
  const lines: LogLine[] = []
  const make = (bindings: Record<string, unknown>): FastifyBaseLogger => {
    const at = (level: string) => (obj?: unknown, msg?: unknown): void => {
      const line: LogLine = typeof obj === 'string'
        ? { ...bindings, level, msg: obj }
        : { ...bindings, ...(obj as object), level, msg: typeof msg === 'string' ? msg : '' }
      lines.push(line)
      onLine?.(line)
    }
    return {
      level: 'info',
      fatal: at('fatal'),
      error: at('error'),
      warn: at('warn'),
      info: at('info'),
      debug: at('debug'),
      trace: at('trace'),
      silent: () => {},
      child: (b: Record<string, unknown>) => make({ ...bindings, ...b })
    } as unknown as FastifyBaseLogger
  }
  return { logger: make({}), lines }
}
