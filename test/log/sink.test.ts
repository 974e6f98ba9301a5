/**
 * An access log's sink holds at most SINK_LIMIT bytes waiting for its destination: past that,
 * lines are dropped, counted, and said in one warn line (bounded memory, serving never waits).
 */
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'tap'
import { LogSink, SINK_LIMIT } from '@proxyctl/core/internal'
import { captureLogger } from '../helpers/log.js'
import { tmpDir } from '../helpers/proxy.js'

test('lines past the sink\'s limit in one turn are dropped, counted and said once', async (t) => {
  const file = path.join(tmpDir(t), 'a.log')
  const { logger, lines } = captureLogger()
  const sink = new LogSink(file, logger)
  const line = 'x'.repeat(1023) + '\n'
  const sent = Math.ceil(SINK_LIMIT / line.length) + 1000
  for (let i = 0; i < sent; i++) sink.write(line)
  const kept = Math.floor(SINK_LIMIT / line.length)
  for (let i = 0; i < 200 && fs.statSync(file).size < kept * line.length; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  sink.close()
  const warns = lines.filter((l) => l.code === 'PROXYCTL_ACCESS_LOG_DROPPED')
  const rows: Array<[string, unknown, unknown]> = [
    ['what fits the limit is written', fs.statSync(file).size, kept * line.length],
    ['the rest is dropped and counted', sink.dropped, sent - kept],
    ['one warn line says so (at most one per 5 s)', warns.length, 1],
    ['it names the limit and the count', [warns[0]?.level, warns[0]?.limit, warns[0]?.path], ['warn', 'accessLog buffer', file]]
  ]
  for (const [name, got, want] of rows) t.same(got, want, name)
})
