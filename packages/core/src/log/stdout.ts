import { fstatSync } from 'node:fs'
import net from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import { pino } from 'pino'
import { prettyLine } from './pretty.js'

type Out = NodeJS.WritableStream & { writableLength?: number }

let out: Out | undefined
let broken = false

/**
 * stdout for log lines. When it is a pipe or socket, writes go through a non-blocking socket: a
 * reader that stops reading must not block the event loop (serving, and even SIGTERM handling,
 * as a synchronous write would), and a reader that went away (EPIPE) only ends logging. The JSON
 * log and an access log on stdout share it, so their lines never interleave mid-line.
 */
export function stdoutStream (): Out | undefined {
  if (out !== undefined) return broken ? undefined : out
  let stream: Out = process.stdout
  try {
    const st = fstatSync(1)
    if (st.isFIFO() || st.isSocket()) stream = new net.Socket({ fd: 1, readable: false, writable: true })
  } catch { /* no stdout: keep process.stdout */ }
  stream.on('error', () => { broken = true })
  out = stream
  return out
}

/** `json`: pino's JSON lines; `pretty`: one readable line each (pretty.ts). */
export type LogFormatName = 'json' | 'pretty'

/** The log format when none is asked for: readable on a terminal, JSON otherwise. */
export function defaultLogFormat (): LogFormatName {
  return process.stdout.isTTY === true ? 'pretty' : 'json'
}

/**
 * The default logger: lines on stdout (see stdoutStream). Past 1 MiB waiting to be read, lines
 * are dropped. `flushLogs()` waits (briefly) for what is queued, before exiting.
 */
export function stdoutLogger (level: string, format: LogFormatName = defaultLogFormat()): FastifyBaseLogger {
  const colors = format === 'pretty' && process.stdout.isTTY === true && process.env.NO_COLOR === undefined
  const stream = {
    write (line: string): void {
      const o = stdoutStream()
      if (o !== undefined && (o.writableLength ?? 0) < 1 << 20) o.write(format === 'pretty' ? prettyLine(line, colors) : line)
    }
  }
  return pino({ level }, stream) as unknown as FastifyBaseLogger
}

/** Resolves when queued log lines are written (or after `ms`, whichever comes first). */
export function flushLogs (ms = 500): Promise<void> {
  const sink = out
  if (sink === undefined || sink === process.stdout || (sink.writableLength ?? 0) === 0) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    sink.once('drain', () => { clearTimeout(timer); resolve() })
  })
}
