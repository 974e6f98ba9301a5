/**
 * Test helpers: start proxyctl for real (in-process or as the CLI), send a request with node:http
 * (raw HTTP is raw-http.ts), and clean up what a test started.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { resolveConfig, startProxy, type ProxyConfig, type RunningProxy } from '@proxyctl/core'
import type { FastifyBaseLogger } from 'fastify'
import type { Teardown } from './lifecycle.js'
import type { Target } from './raw-http.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CLI = path.join(ROOT, 'packages', 'cli', 'dist', 'bin.js')

/** A fresh temporary folder, removed when the test ends. */
export function tmpDir (t: Teardown, prefix = 'proxyctl-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Points `$XDG_CACHE_HOME` at a fresh temporary folder for every CLI the test runs, so a
 * config's `selfSignedCertificate()` keeps its certificate there, not in the user's ~/.cache.
 * Returns the folder; removed, and the variable restored, when the test ends.
 */
export function cacheHome (t: Teardown): string {
  const before = process.env.XDG_CACHE_HOME
  t.teardown(() => { if (before === undefined) delete process.env.XDG_CACHE_HOME; else process.env.XDG_CACHE_HOME = before })
  const dir = tmpDir(t, 'proxyctl-cache-')
  process.env.XDG_CACHE_HOME = dir
  return dir
}

/**
 * A temporary folder inside the repo, so config modules written there resolve `proxyctl`
 * through the workspace's node_modules. Removed when the test ends.
 */
export function configDir (t: Teardown): string {
  const base = path.join(ROOT, 'test', '.tmp')
  fs.mkdirSync(base, { recursive: true })
  const dir = fs.mkdtempSync(path.join(base, 'cfg-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Starts a config in this process (no logging unless `logger`); closed when the test ends. */
export async function startConfig (t: Teardown, config: ProxyConfig, logger: FastifyBaseLogger | false = false): Promise<RunningProxy> {
  const proxy = await startProxy(resolveConfig(config), { logger })
  t.teardown(() => proxy.close(0))
  return proxy
}

/** Base URL of the n-th listener of a running proxy. */
export function urlOf (proxy: RunningProxy, n = 0): string {
  const l = proxy.listeners[n]
  if (l === undefined) throw new Error(`no listener ${n}`)
  return l.url
}

export interface RawResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/**
 * Sends one request with node:http, leaving the path exactly as given (no normalisation) and
 * the headers exactly as given (no default Host unless passed).
 */
export function request (target: Target, opts: { method?: string, path?: string, headers?: Record<string, string | string[]>, body?: string | Buffer, setHost?: boolean } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      ...(target.socketPath ? { socketPath: target.socketPath } : { host: target.host ?? '127.0.0.1', port: target.port }),
      method: opts.method ?? 'GET',
      path: opts.path ?? '/',
      headers: opts.headers ?? {},
      setHost: opts.setHost ?? true,
      agent: false
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** Host, port of a listener URL like `http://127.0.0.1:1234` or `http://[::1]:1234`. */
export function targetOf (url: string): Target {
  if (url.startsWith('unix:')) return { socketPath: url.slice(5) }
  const u = new URL(url)
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) }
}

export interface CliRun { code: number | null, stdout: string, stderr: string }

/**
 * A user to run the CLI as (spawn's uid and gid), e.g. to make a 0555 folder read-only under root.
 * tap's process-info hook, which tap adds to every child, cannot then write its record into the
 * repo's .tap folder and says so on stderr at exit; the exit code stays the CLI's.
 */
export interface RunAs { uid: number, gid: number }

/** Runs `proxyctl ARGS` to completion (check, init). */
export function runCli (args: string[], options: { cwd?: string, timeoutMs?: number, user?: RunAs } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...options.user })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

export interface StartedCli {
  child: ChildProcess
  /** Listener URLs from the "listening on" log lines. */
  urls: string[]
  output: () => string
  /** Sends a signal and resolves with the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/**
 * Runs `proxyctl start` and waits until it has logged `expectListeners` "listening on" lines.
 * Killed by PID when the test ends, if still running.
 */
export function startCli (t: Teardown, args: string[], options: { cwd?: string, expectListeners?: number, command?: string[], user?: RunAs } = {}): Promise<StartedCli> {
  const cmd = options.command ?? [process.execPath, CLI]
  // A wrapper command (npx) runs in its own process group, and signals go to the whole group,
  // as a terminal's Ctrl-C or a service manager's stop would.
  const group = options.command !== undefined
  const child = spawn(cmd[0] as string, [...cmd.slice(1), 'start', ...args], { cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: group, ...options.user })
  const signal = (sig: NodeJS.Signals): void => {
    if (group && child.pid !== undefined) process.kill(-child.pid, sig)
    else child.kill(sig)
  }
  let out = ''
  // 'close' waits for every process holding our stdio, so a wrapped proxyctl has exited too.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) signal('SIGKILL') })
  const want = options.expectListeners ?? 1
  return new Promise((resolve, reject) => {
    const urls: string[] = []
    const onData = (d: Buffer): void => {
      out += d.toString()
      for (const m of out.matchAll(/"msg":"listening on ([^"]+)"/g)) if (!urls.includes(m[1] as string)) urls.push(m[1] as string)
      if (urls.length >= want) {
        resolve({
          child,
          urls,
          output: () => out,
          stop: (sig = 'SIGTERM') => { signal(sig); return exited }
        })
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
    child.on('exit', (code) => reject(new Error(`proxyctl exited ${code} before listening:\n${out}`)))
    setTimeout(() => reject(new Error(`proxyctl did not listen in time:\n${out}`)), 30_000).unref()
  })
}

/** Writes a config module to `dir/name` and returns its path. */
export function writeConfig (dir: string, source: string, name = 'proxy.config.ts'): string {
  const file = path.join(dir, name)
  fs.writeFileSync(file, source)
  return file
}
