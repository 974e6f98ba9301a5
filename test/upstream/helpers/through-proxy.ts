/**
 * Helpers for upstream tests through a real proxy: proxyctl in-process with its log captured,
 * a keep-alive client (optionally bound to a loopback source address) and bounded-concurrency
 * request runs.
 */
import { captureLogger, type LogLine } from '../../helpers/log.js'
export { captureLogger, type LogLine }
import { Pool } from 'undici'
import type { ProxyConfig, RunningProxy } from '@proxyctl/core'
import { proxy, type UpstreamConfig } from 'proxyctl'
import { startConfig, urlOf } from '../../helpers/proxy.js'
import type { Teardown } from '../../helpers/lifecycle.js'

/** A config proxying `/` to upstream `app` on 127.0.0.1:0. */
export function appConfig (app: UpstreamConfig): ProxyConfig {
  return {
    servers: [{ listen: ['127.0.0.1:0'], locations: { '/': proxy('http://app') } }],
    upstreams: { app }
  }
}

export interface Started {
  proxy: RunningProxy
  url: string
  /** Log lines, when started with `log: true`. */
  lines: LogLine[]
  close (): Promise<void>
}

/** Starts proxyctl in-process (closed when the test ends); `log` captures its log lines. */
export async function start (t: Teardown, config: ProxyConfig, options: { log?: boolean, onLine?: (line: LogLine) => void } = {}): Promise<Started> {
  const capture = options.log === true ? captureLogger(options.onLine) : undefined
  const running = await startConfig(t, config, capture?.logger ?? false)
  const close = (): Promise<void> => running.close(0)
  return { proxy: running, url: urlOf(running), lines: capture?.lines ?? [], close }
}

/** A keep-alive client to the proxy, optionally from a given loopback source address. Closed when the test ends. */
export function client (t: Teardown, url: string, options: { localAddress?: string, connections?: number } = {}): Pool {
  const pool = new Pool(url, {
    connections: options.connections ?? 16,
    ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {})
  })
  t.teardown(() => pool.destroy())
  return pool
}

export interface Hit { status: number, upstream: string, body: string }

/** GET `path`; `upstream` is the answering upstream's `x-upstream` header ('' if none). */
export async function hit (c: Pool, path = '/', timeoutMs = 5000): Promise<Hit> {
  const res = await c.request({ method: 'GET', path, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
  const body = await res.body.text()
  const up = res.headers['x-upstream']
  return { status: res.statusCode, upstream: typeof up === 'string' ? up : '', body }
}

/** `n` requests with at most `concurrency` in flight; results in request order. */
export async function hitMany (c: Pool, n: number, concurrency: number, pathOf: (i: number) => string = () => '/'): Promise<Hit[]> {
  const out: Hit[] = new Array(n)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++
      out[i] = await hit(c, pathOf(i))
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
  return out
}
