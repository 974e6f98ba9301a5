// Processes the benchmark starts: spawned pinned to a core, tracked by PID, stopped by PID at the
// end, on Ctrl-C, on SIGTERM and on failure. Also what /proc tells about them: CPU time and RSS.
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'

/** Every process started and not yet seen to exit, by PID. */
const running = new Map()
/** Set by stopAll: nothing new starts once cleanup has begun. */
let shuttingDown = false
export const isShuttingDown = () => shuttingDown

export const PINNING = (() => {
  try { return Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) >= 2 } catch { return false }
})()
export const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 }
})()

/**
 * Starts `cmd args` on core `cpu` (when there are two cores), with `ulimit -n nofile`, its stdout
 * and stderr appended to `log`. `sh` and `taskset` exec the command, so the PID is the command's.
 */
export function start (name, cmd, args, { cpu, env = {}, log, nofile = 30000, stdin = 'ignore', stdout } = {}) {
  if (shuttingDown) throw new Error(`not starting ${name}: shutting down`)
  const pin = PINNING && cpu !== undefined ? `exec taskset -c ${cpu} "$@"` : 'exec "$@"'
  const out = stdout ?? (log === undefined ? 'ignore' : fs.openSync(log, 'a'))
  const child = spawn('sh', ['-c', `ulimit -n ${nofile} 2>/dev/null || ulimit -n $(ulimit -Hn); ${pin}`, 'sh', cmd, ...args], {
    env: { ...process.env, ...env },
    stdio: [stdin, out, stdout ?? out]
  })
  if (typeof out === 'number') fs.closeSync(out)
  const proc = { name, child, pid: child.pid, log, exited: false, code: null, signal: null }
  proc.exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      proc.exited = true; proc.code = code; proc.signal = signal
      running.delete(proc.pid)
      resolve()
    })
  })
  child.on('error', () => {})
  running.set(proc.pid, proc)
  return proc
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stop (proc, graceMs = 5000) {
  if (proc === undefined || proc.exited) return
  try { process.kill(proc.pid, 'SIGTERM') } catch { /* gone */ }
  const timer = setTimeout(() => { try { process.kill(proc.pid, 'SIGKILL') } catch { /* gone */ } }, graceMs)
  await proc.exitPromise
  clearTimeout(timer)
}

export async function stopAll () {
  shuttingDown = true
  await Promise.all([...running.values()].map((p) => stop(p)))
}

/** Last resort (process 'exit'): SIGKILL whatever is left, synchronously. */
export function killAllNow () {
  for (const p of running.values()) { try { process.kill(p.pid, 'SIGKILL') } catch { /* gone */ } }
}

export function tail (file, lines = 15) {
  try { return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') } catch { return '' }
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) })
  })
}

/** One HTTP request (no keep-alive): { status, body: Buffer }. */
export function request ({ port, socketPath, path = '/', method = 'GET', headers = {}, body, timeout = 5000, tls = false }) {
  return new Promise((resolve, reject) => {
    // tls: the bench's own self-signed certificate, not verified.
    const req = (tls ? https : http).request({ host: '127.0.0.1', port, socketPath, path, method, headers, agent: false, timeout, ...(tls ? { rejectUnauthorized: false } : {}) }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeout} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** Waits until GET /health gets an HTTP answer, any status (or the process exits, or `ms` pass). */
export async function waitReady (proc, target, ms = 30_000) {
  const deadline = Date.now() + ms
  let last
  while (Date.now() < deadline) {
    if (proc.exited) throw new Error(`${proc.name} exited (code ${proc.code}, signal ${proc.signal}) before it was ready${proc.log ? `; log ${proc.log}:\n${tail(proc.log)}` : ''}`)
    try {
      const r = await request({ ...target, path: '/health', timeout: 1000 })
      if (r.status > 0) return
    } catch (err) { last = err }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${proc.name} not ready after ${ms} ms: ${last?.message}${proc.log ? `; log ${proc.log}:\n${tail(proc.log)}` : ''}`)
}

/* ------------------------------------------------------------------ /proc */

/** The PID and all its descendants (scanning /proc for parent links). */
export function tree (pid) {
  const parent = new Map()
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    const st = readStat(Number(e))
    if (st !== null) parent.set(Number(e), st.ppid)
  }
  const out = [pid]
  for (let i = 0; i < out.length; i++) for (const [p, pp] of parent) if (pp === out[i]) out.push(p)
  return out
}

function readStat (pid) {
  let s
  try { s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8') } catch { return null }
  // comm may hold spaces and parentheses: fields start after the last ')'
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
  return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]) }
}

/** CPU seconds (user + system, all threads) used so far by these PIDs. */
export function cpuSeconds (pids) {
  let ticks = 0
  for (const p of pids) { const st = readStat(p); if (st !== null) ticks += st.utime + st.stime }
  return ticks / CLK_TCK
}

/** VmRSS and VmHWM (KiB) of one PID. */
export function memory (pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    return { rss: Number(/VmRSS:\s*(\d+)/.exec(s)?.[1] ?? 0), hwm: Number(/VmHWM:\s*(\d+)/.exec(s)?.[1] ?? 0) }
  } catch { return { rss: 0, hwm: 0 } }
}

/** TCP connections the process holds to 127.0.0.1:`port` (its fds' socket inodes matched in /proc/net/tcp). */
export function connectionsTo (pid, port) {
  try {
    const inodes = new Set()
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try { const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`)); if (m) inodes.add(m[1]) } catch { /* closed meanwhile */ }
    }
    const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
    let n = 0
    for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f[2] === want && f[3] === '01' && inodes.has(f[9])) n++
    }
    return n
  } catch { return 0 }
}

export function fdCount (pid) {
  try { return fs.readdirSync(`/proc/${pid}/fd`).length } catch { return 0 }
}

/**
 * Watches a process tree while a load runs: resets VmHWM (clear_refs 5), samples VmRSS every
 * 100 ms. `end()` gives the CPU share (CPU seconds ÷ wall seconds) and the peak RSS (KiB: the
 * highest of the samples and of VmHWM after the reset).
 */
export function monitor (pid) {
  const pids = tree(pid)
  let hwmReset = true
  for (const p of pids) { try { fs.writeFileSync(`/proc/${p}/clear_refs`, '5') } catch { hwmReset = false } }
  const t0 = process.hrtime.bigint()
  const c0 = cpuSeconds(pids)
  let peak = 0
  const sample = () => { let sum = 0; for (const p of pids) sum += memory(p).rss; if (sum > peak) peak = sum }
  sample()
  const timer = setInterval(sample, 100)
  return {
    end () {
      clearInterval(timer)
      sample()
      const wall = Number(process.hrtime.bigint() - t0) / 1e9
      const cpu = cpuSeconds(pids) - c0
      if (hwmReset) { let hwm = 0; for (const p of pids) hwm += memory(p).hwm; if (hwm > peak) peak = hwm }
      return { cpuShare: cpu / wall, cpuSeconds: cpu, wall, peakRssKiB: peak }
    }
  }
}
