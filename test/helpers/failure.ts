/**
 * Test helpers for failure cases: proxyctl in-process with its log lines captured, a free port
 * with nothing listening, and a loopback listener that never completes a TCP handshake (for
 * connect timeouts). Raw upstreams that misbehave on purpose: raw-http.ts's rawUpstream.
 */
import { spawn } from 'node:child_process'
import net from 'node:net'
import { captureLogger, type LogLine } from './log.js'
export { captureLogger, type LogLine }
import type { ProxyConfig, RunningProxy } from '@proxyctl/core'
import type { UpstreamPool } from '@proxyctl/plugins/internal'
import type { Teardown } from './lifecycle.js'
import { startConfig } from './proxy.js'

export interface LoggedProxy {
  proxy: RunningProxy
  lines: LogLine[]
  port: number
  /** Error lines logged since the proxy started. */
  errors (): LogLine[]
}

/** Starts a config in this process with its log captured; closed when the test ends. */
export async function startLogged (t: Teardown, config: ProxyConfig): Promise<LoggedProxy> {
  const { logger, lines } = captureLogger()
  const proxy = await startConfig(t, config, logger)
  const url = proxy.listeners[0]?.url ?? ''
  return { proxy, lines, port: Number(new URL(url).port), errors: () => lines.filter((l) => l.level === 'error') }
}

/** The UpstreamPool objects of a running proxy (kept under `proxy:` keys: `config.carried` for those a reload may keep, `config.shared` for the direct URLs' map). */
export function poolsOf (proxy: RunningProxy): UpstreamPool[] {
  const out = new Set<UpstreamPool>()
  for (const [key, value] of proxy.app.config.shared) {
    if (!key.startsWith('proxy:')) continue
    if (value instanceof Map) for (const p of value.values()) out.add(p as UpstreamPool)
    else out.add(value as UpstreamPool)
  }
  for (const [key, { value }] of proxy.app.config.carried) if (key.startsWith('proxy:')) out.add(value as UpstreamPool)
  return [...out]
}

/** Sum of `activeConnections` over every peer of every pool of the proxy. */
export function activeConnections (proxy: RunningProxy): number {
  let n = 0
  for (const pool of poolsOf(proxy)) for (const peer of pool.peers) n += peer.activeConnections
  return n
}

/** A loopback TCP port nothing listens on (bound, then closed). */
export async function freePort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

export interface Blackhole {
  port: number
  address: string
}

/**
 * A listener on 127.0.0.1 whose SYNs go unanswered: a child Node process listens with a backlog
 * of 1 and then blocks its event loop, so it never accepts; we fill its accept queue with our own
 * connections, after which the kernel drops further SYNs and a connect() hangs until the client's
 * timeout. Loopback only. Checked: a probe connect must hang for `probeMs`. Everything is closed
 * (the child killed) when the test ends.
 */
export async function blackhole (t: Teardown, probeMs = 300): Promise<Blackhole> {
  const child = spawn(process.execPath, ['-e', [
    "const s = require('node:net').createServer()",
    "s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {",
    '  process.stdout.write(s.address().port + "\\n")',
    '  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)',
    '})'
  ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const fillers: net.Socket[] = []
  t.teardown(() => { for (const s of fillers) s.destroy(); child.kill('SIGKILL') })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())))
    setTimeout(() => reject(new Error('blackhole listener did not start')), 5000).unref()
  })
  const tryConnect = (ms: number): Promise<[boolean, net.Socket]> => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => {})
    const timer = setTimeout(() => resolve([false, s]), ms)
    s.once('connect', () => { clearTimeout(timer); resolve([true, s]) })
  })
  for (let i = 0; i < 64; i++) {
    const [ok, s] = await tryConnect(probeMs)
    if (ok) { fillers.push(s); continue }
    s.destroy()
    return { port, address: `127.0.0.1:${port}` }
  }
  throw new Error('could not fill the accept queue of the blackhole listener')
}

/** Milliseconds `fn` took, with its result. */
export async function timed<T> (fn: () => Promise<T>): Promise<{ ms: number, value: T }> {
  const t0 = performance.now()
  const value = await fn()
  return { ms: performance.now() - t0, value }
}
