#!/usr/bin/env node
// `pnpm bench`: proxyctl against nginx, @fastify/http-proxy, node-http-proxy and a lean
// node:http + undici proxy, all in front of the same nginx upstream. See bench/README.md.
//
// Plain JS on purpose: it needs no build step beyond the workspace build (`pnpm build`).
// Progress goes to stderr; the markdown report to stdout and bench/results/latest.md.
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  start, stop, stopAll, killAllNow, tail, freePort, request, waitReady, monitor, memory, fdCount, connectionsTo, PINNING, isShuttingDown
} from './lib/proc.mjs'
import { runWrk } from './lib/wrk.mjs'

const BENCH = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(BENCH, '..')
const env = process.env
const QUICK = env.QUICK === '1'
const ROUNDS = Number(env.ROUNDS ?? (QUICK ? 1 : 3))
const DURATION = Number(env.DURATION ?? (QUICK ? 3 : 10)) // seconds per measured wrk run
const WARMUP = Number(env.WARMUP ?? (QUICK ? 1 : 3)) // seconds of unmeasured load first (round 1)
const IDLE_CONNS = Number(env.IDLE_CONNS ?? 10_000)
const SLOW_CLIENTS = Number(env.SLOW_CLIENTS ?? 1000)
const SLOW_SIZE = Number(env.SLOW_SIZE ?? 1024 * 1024) // bytes of each slow client's answer
const SLOW_RATE = Number(env.SLOW_RATE ?? 64 * 1024) // bytes/s each slow client reads
const SLOW_PAUSE = Number(env.SLOW_PAUSE ?? 0) // ms each slow client first reads nothing
const WS_TUNNELS = 100
const WS_MESSAGE = 1024
const CONNECTIONS = 50
const PROXY_CPU = 0 // the proxy under test (and its children)
const LOAD_CPU = 1 // wrk, the upstream nginx, the WebSocket echo server and load, this script
const KEEP_TMP = env.KEEP_TMP === '1'
const SMALL = 100
const BIG = 1024 * 1024
const UPLOAD = 64 * 1024

// proxyctl is started as users start it (`proxyctl start`): the bin, through its shebang.
const CLI = path.join(ROOT, 'packages', 'cli', 'dist', 'bin.js')
/** The Node flags proxyctl's bin gives itself in its shebang, as the report quotes them. */
const cliNodeFlags = () => fs.readFileSync(CLI, 'utf8').split('\n', 1)[0].replace(/^#!.*?\bnode\s*/, '')

const progress = (msg) => process.stderr.write(`[bench] ${msg}\n`)

/* -------------------------------------------------------------- cleanup */

let tmp
let cleaning
function removeTmp () {
  if (tmp === undefined || KEEP_TMP) return
  try { fs.rmSync(tmp, { recursive: true, force: true }) } catch { /* best effort */ }
}
function cleanup () {
  cleaning ??= stopAll().finally(removeTmp)
  return cleaning
}
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(sig, () => {
    progress(`${sig}: stopping everything started`)
    cleanup().finally(() => process.exit(code))
  })
}
process.on('exit', () => { killAllNow(); removeTmp() })

/* -------------------------------------------------------------- setup */

function have (cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
}

function ensureTools () {
  const missing = ['nginx', 'wrk', 'taskset'].filter((c) => !have(c))
  if (missing.length === 0) return
  const pkgs = missing.map((c) => c === 'taskset' ? 'util-linux' : c)
  const cmd = `apt-get update -qq && apt-get install -y -qq ${pkgs.join(' ')}`
  if (process.getuid?.() === 0 && have('apt-get') && env.BENCH_NO_INSTALL !== '1') {
    progress(`missing ${missing.join(', ')}: installing from Debian (${cmd})`)
    execFileSync('sh', ['-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'] })
    return
  }
  throw new Error(`missing ${missing.join(', ')}. Install them first, e.g. as root on Debian/Ubuntu:\n  ${cmd}`)
}

function render (template, vars) {
  return fs.readFileSync(path.join(BENCH, 'configs', template), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k) => {
    if (vars[k] === undefined) throw new Error(`${template}: no value for {{${k}}}`)
    return String(vars[k])
  })
}

function machine () {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8')
  const sh = (c) => { try { return execFileSync('sh', ['-c', c], { encoding: 'utf8' }).trim() } catch { return '?' } }
  let git = sh('git -C ' + JSON.stringify(ROOT) + ' rev-parse --short HEAD')
  if (sh('git -C ' + JSON.stringify(ROOT) + ' status --porcelain --untracked-files=no | head -1') !== '') git += ' (with uncommitted changes)'
  const parts = []
  if (env.QUICK !== undefined) parts.push(`QUICK=${env.QUICK}`)
  for (const k of ['ROUNDS', 'DURATION', 'WARMUP', 'IDLE_CONNS', 'SLOW_CLIENTS', 'SLOW_SIZE', 'SLOW_RATE', 'SLOW_PAUSE', 'PEERS', 'SCENARIOS']) if (env[k] !== undefined) parts.push(`${k}=${env[k]}`)
  parts.push(env.npm_lifecycle_event === 'bench' ? 'pnpm bench' : `node ${path.relative(process.cwd(), fileURLToPath(import.meta.url)) || 'bench/run.mjs'}`)
  return {
    date: new Date().toISOString(),
    command: parts.join(' '),
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    nprocCmd: sh('nproc'),
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? '?',
    node: process.version,
    nginx: sh('nginx -v 2>&1').replace(/^nginx version:\s*/, ''),
    wrk: sh('wrk -v 2>&1 | head -1').replace(/\s*\[.*$/, ''),
    kernel: os.release(),
    git
  }
}

/* -------------------------------------------------------------- targets */

/**
 * The proxies, each its own process on its own port, pinned to PROXY_CPU. `host` is the Host
 * wrk sends (default: 127.0.0.1:PORT).
 */
function peerDefs () {
  const node = process.execPath
  return [
    { id: 'proxyctl', label: 'proxyctl', cmd: CLI, args: ['start', '--config', path.join(BENCH, 'configs', 'proxyctl.config.mjs')], env: cacheEnv() },
    { id: 'nginx', label: 'nginx (proxy, keepalive)', nginx: 'proxy.nginx.conf', vars: { BUFFERS: '', ACCESS_LOG: 'access_log off;' } },
    { id: 'nginx-buf64', label: 'nginx (proxy, keepalive, 64 KiB buffers)', nginx: 'proxy.nginx.conf', vars: { BUFFERS: 'proxy_buffer_size 64k; proxy_buffers 8 64k; proxy_busy_buffers_size 128k;', ACCESS_LOG: 'access_log off;' } },
    // The access log's cost: the same two with a combined access log to a file (PEERS=nginx,nginx-log,proxyctl-log).
    // Metrics' cost: the same config with metrics.listen on (PEERS=proxyctl-metrics).
    { id: 'proxyctl-metrics', label: 'proxyctl, metrics on', cmd: CLI, args: ['start', '--config', path.join(BENCH, 'configs', 'proxyctl.config.mjs')], env: { METRICS_LISTEN: 'unix:' + path.join(tmp ?? os.tmpdir(), 'proxyctl-metrics.sock') } },
    { id: 'proxyctl-log', label: 'proxyctl, access log on (to a file)', cmd: CLI, args: ['start', '--config', path.join(BENCH, 'configs', 'proxyctl.config.mjs')], env: { ACCESS_LOG: path.join(tmp ?? os.tmpdir(), 'proxyctl-access.log') } },
    { id: 'nginx-log', label: 'nginx (proxy, keepalive), access log on (to a file)', nginx: 'proxy.nginx.conf', vars: { BUFFERS: '', ACCESS_LOG: `access_log ${path.join(tmp ?? os.tmpdir(), 'nginx-access.log')} combined;` } },
    // limitReq's cost (under the limit): PEERS=proxyctl-limitreq.
    { id: 'proxyctl-limitreq', label: 'proxyctl, limitReq on (under the limit)', cmd: CLI, args: ['start', '--config', path.join(BENCH, 'configs', 'proxyctl.config.mjs')], env: { LIMIT_REQ: '1' } },
    { id: 'fastify', label: '@fastify/http-proxy', cmd: node, args: [path.join(BENCH, 'peers', 'fastify-http-proxy.mjs')] },
    { id: 'http-proxy', label: 'node-http-proxy', cmd: node, args: [path.join(BENCH, 'peers', 'node-http-proxy.mjs')] },
    { id: 'lean', label: 'lean node:http + undici', cmd: node, args: [path.join(BENCH, 'peers', 'lean-undici.mjs')] },
    ...baselineDef()
  ]
}

/**
 * BASELINE=DIR: another proxyctl checkout (installed and built), run as one more peer with its own
 * bench config, so a change to the request path is measured against the commit before it in one
 * run ("proxyctl ÷ baseline", also paired by round).
 */
function baselineDef () {
  if (env.BASELINE === undefined) return []
  const dir = path.resolve(env.BASELINE)
  const rev = spawnSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() || dir
  return [{ id: 'baseline', label: `proxyctl at ${rev} (baseline)`, cmd: path.join(dir, 'packages', 'cli', 'dist', 'bin.js'), args: ['start', '--config', path.join(dir, 'bench', 'configs', 'proxyctl.config.mjs')] }]
}

/** The cache scenarios' stores: a folder in the temp dir, and the Redis run.mjs started (if any). */
let redisUrl
function cacheEnv () {
  return { CACHE_DIR: path.join(tmp ?? os.tmpdir(), 'proxyctl-cache'), ...(redisUrl !== undefined ? { REDIS_URL: redisUrl } : {}) }
}

const MANY = {
  id: 'proxyctl-many',
  label: 'proxyctl, 500 locations + 50 server names',
  cmd: CLI,
  args: ['start', '--config', path.join(BENCH, 'configs', 'proxyctl-many.config.mjs')],
  host: 'r49.bench.test'
}

async function startTarget (def, upstream) {
  const port = await freePort()
  const log = path.join(tmp, `${def.id}.log`)
  let proc
  if (def.nginx !== undefined) {
    const conf = path.join(tmp, `${def.id}.conf`)
    fs.writeFileSync(conf, render(def.nginx, { DIR: tmp, ID: def.id, PORT: port, UPSTREAM_PORT: upstream.port, UPSTREAM_SOCK: upstream.sock, ...def.vars }))
    proc = start(def.id, 'nginx', ['-p', tmp, '-e', path.join(tmp, `${def.id}-error.log`), '-c', conf], { cpu: PROXY_CPU, log })
  } else {
    proc = start(def.id, def.cmd, def.args, {
      cpu: PROXY_CPU,
      log,
      env: { PORT: String(port), UPSTREAM_TCP: `127.0.0.1:${upstream.port}`, UPSTREAM_SOCK: upstream.sock, ...(def.env ?? {}) }
    })
  }
  await waitReady(proc, { port, tls: def.tls === true })
  return { ...def, port, proc, url: `http://127.0.0.1:${port}` }
}

/** Each target must answer the benchmark's requests correctly before it is measured. */
async function sanityCheck (t) {
  const headers = t.host !== undefined ? { host: t.host } : {}
  const expect = async (what, opts, status, length) => {
    const r = await request({ port: t.port, headers, timeout: 10_000, ...opts })
    if (r.status !== status) throw new Error(`${what}: status ${r.status}, expected ${status}`)
    if (length !== undefined && r.body.length !== length) throw new Error(`${what}: ${r.body.length} bytes, expected ${length}`)
  }
  if (t.id === 'proxyctl-many') {
    await expect('GET /tcp/small (Host r49.bench.test)', { path: '/tcp/small' }, 200, SMALL)
    await expect('GET /tcp/small (Host host0.bench.test)', { path: '/tcp/small', headers: { host: 'host0.bench.test' } }, 404)
    return
  }
  await expect('GET /tcp/small', { path: '/tcp/small' }, 200, SMALL)
  await expect('GET /unix/small', { path: '/unix/small' }, 200, SMALL)
  await expect('GET /tcp/big', { path: '/tcp/big' }, 200, BIG)
  await expect('GET /unix/big', { path: '/unix/big' }, 200, BIG)
  await expect('POST /tcp/upload', { path: '/tcp/upload', method: 'POST', body: Buffer.alloc(UPLOAD, 0x78), headers: { ...headers, 'content-type': 'application/octet-stream' } }, 200)
}

/* -------------------------------------------------------------- reload */

const RELOADS = Number(env.RELOADS ?? (QUICK ? 5 : 20))
const RELOAD_SECONDS = Number(env.RELOAD_SECONDS ?? (QUICK ? 6 : 30))
const RELOAD_NEW_CONNS = 4

/**
 * Reload under load: proxyctl on the bench config plus one location whose answer each reload
 * changes (a TypeScript wrapper in the temp dir, so each load bundles the config anew). Two wrk
 * runs at once for RELOAD_SECONDS: GET 100 B over TCP on keep-alive connections (failed requests,
 * p99) and the same on a new connection per request (refused connections); RELOADS evenly spaced
 * `proxyctl reload` runs in between, each of which must exit 0. Then the same two runs without
 * reloads, for the p99 to compare.
 */
async function reloadScenario (upstream, logWrk) {
  const file = path.join(tmp, 'reload.config.ts')
  const write = (n) => fs.writeFileSync(file, `import base from ${JSON.stringify(path.join(BENCH, 'configs', 'proxyctl.config.mjs'))}
import { respond } from 'proxyctl'
const [first, ...rest] = base.servers
export default { ...base, servers: [{ ...first, locations: { ...first.locations, '= /generation': respond(200, '${n}') } }, ...rest] }
`)
  write(0)
  const t = await startTarget({ id: 'proxyctl-reload', label: 'proxyctl (reload scenario)', cmd: CLI, args: ['start', '--config', file] }, upstream)
  // What `proxyctl reload` does after validating: SIGHUP to the pid file's process, then wait for
  // its status file to count the reload (test/cli/reload.test.ts runs the CLI itself). Validating
  // here too would load the config twice per reload on a core that wrk shares.
  const pidFile = path.join(tmp, 'proxyctl.pid')
  const status = () => { try { return JSON.parse(fs.readFileSync(`${pidFile}.status`, 'utf8')) } catch { return undefined } }
  const reload = async () => {
    const t0 = Date.now()
    const before = status()?.reloads ?? 0
    process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGHUP')
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 10))
      const now = status()
      if (now !== undefined && now.reloads > before) return { ms: Date.now() - t0, code: now.last?.ok ? 0 : 1, out: (now.last?.errors ?? []).join('; ') }
      if (Date.now() - t0 > 120_000) return { ms: Date.now() - t0, code: 1, out: 'no answer in 120 s' }
    }
  }
  const load = () => {
    const opts = { url: `${t.url}/tcp/small`, cpu: LOAD_CPU, log: logWrk, seconds: RELOAD_SECONDS }
    return Promise.all([runWrk({ ...opts, connections: CONNECTIONS }), runWrk({ ...opts, connections: RELOAD_NEW_CONNS, headers: ['Connection: close'] })])
  }
  try {
    if (WARMUP > 0) await runWrk({ url: `${t.url}/tcp/small`, cpu: LOAD_CPU, connections: CONNECTIONS, seconds: WARMUP, log: logWrk })
    const busy = load()
    const reloads = []
    const spacing = RELOAD_SECONDS * 1000 / (RELOADS + 1)
    const t0 = Date.now()
    for (let i = 1; i <= RELOADS; i++) {
      const wait = t0 + i * spacing - Date.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      write(i)
      const r = await reload()
      // The new config must answer as soon as the reload exits 0.
      const marker = await request({ port: t.port, path: '/generation', timeout: 5000 }).then((x) => String(x.body), (err) => err.message)
      reloads.push({ ...r, started: Date.now() - r.ms, served: marker === String(i) })
      progress(`  reload ${i}/${RELOADS}: exit ${r.code} in ${r.ms} ms${marker === String(i) ? '' : `, /generation answered ${marker}`}${r.code === 0 ? '' : `: ${r.out.split('\n')[0]}`}`)
    }
    const [withKeepAlive, withNew] = await busy
    progress('  the same load without reloads')
    const [quietKeepAlive, quietNew] = await load()
    return { reloads, late: reloadsAfter(reloads, t0, RELOAD_SECONDS), withKeepAlive, withNew, quietKeepAlive, quietNew }
  } finally {
    await stop(t.proc)
  }
}

/** Reloads that started after the load run had ended. */
const reloadsAfter = (reloads, t0, seconds) => reloads.filter((r) => r.started > t0 + seconds * 1000).length

/* -------------------------------------------------------------- scenarios */

const SCENARIOS = [
  { id: 'small-tcp', title: 'GET 100 B, TCP upstream', path: '/tcp/small' },
  { id: 'small-unix', title: 'GET 100 B, unix socket upstream', path: '/unix/small' },
  { id: 'big-tcp', title: 'GET 1 MiB, TCP upstream', path: '/tcp/big' },
  { id: 'big-unix', title: 'GET 1 MiB, unix socket upstream', path: '/unix/big' },
  { id: 'upload', title: 'POST 64 KiB upload, TCP upstream', path: '/tcp/upload', script: path.join(BENCH, 'load', 'upload.lua') },
  // compress / gzip on at level 1 on both (bench/configs): proxyctl and the nginx peers only.
  { id: 'gzip-json', title: 'GET 100 KiB JSON with gzip (level 1), TCP upstream (proxyctl and nginx only)', path: '/gzip/data.json', headers: ['Accept-Encoding: gzip'], gzip: true },
  // The proxy cache: every request a HIT after the first (valid 200 10m on both; nginx's cache is always files, with the page cache).
  { id: 'cache-mem', title: 'GET 100 B from the cache: proxyctl memory store, nginx proxy_cache HIT (proxyctl and nginx only)', path: '/cache-mem/small', cache: true },
  { id: 'cache-disk', title: 'GET 100 B from the cache: proxyctl disk store, nginx proxy_cache HIT (proxyctl and nginx only)', path: '/cache-disk/small', cache: true },
  { id: 'cache-redis', title: 'GET 100 B from the cache: proxyctl Redis store (redis-server on a unix socket; proxyctl only)', path: '/cache-redis/small', redis: true },
  { id: 'selection', title: 'Selection cost: GET 100 B, TCP upstream, 1 location vs 500 locations and 50 server names (proxyctl only)', path: '/tcp/small', selection: true }
]

/** 100 KiB of JSON records (ids, names, flags): text that compresses as API answers do. */
function gzipJson () {
  const items = []
  for (let i = 0; JSON.stringify(items).length < 100 * 1024; i++) items.push({ id: i, name: `item ${i}`, active: i % 3 === 0, score: (i * 7919) % 1000, tags: ['alpha', 'beta'].slice(0, 1 + (i % 2)) })
  return JSON.stringify(items).slice(0, 100 * 1024 - 1) + ']'
}

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const m = Math.floor(v.length / 2)
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2
}

/** Per-round ratios a ÷ b of req/s per core, when both targets have a run in every round. */
function pairedRatios (a, b) {
  if (a === undefined || b === undefined || a.length !== b.length) return []
  const perCore = (r) => r.cpuShare > 0 ? r.rps / r.cpuShare : NaN
  return a.map((r, i) => perCore(r) / perCore(b[i])).filter(Number.isFinite)
}

function summarize (runs) {
  if (runs === undefined || runs.length === 0) return null
  const pick = (k) => median(runs.map((r) => r[k]))
  const rpsAll = runs.map((r) => r.rps)
  const rps = pick('rps')
  const share = pick('cpuShare')
  return {
    rounds: runs.length,
    rps,
    spread: runs.length > 1 && rps > 0 ? (Math.max(...rpsAll) - Math.min(...rpsAll)) / rps : null,
    cpuShare: share,
    perCore: median(runs.map((r) => r.cpuShare > 0 ? r.rps / r.cpuShare : null)),
    p50: pick('p50'),
    p99: pick('p99'),
    errors: pick('errors'),
    // a run with no response at all (the target hung): flagged in the errors column
    stalled: runs.filter((r) => r.requests === 0).length,
    peakRssKiB: pick('peakRssKiB')
  }
}

/* -------------------------------------------------------------- WebSocket */

async function wsScenario (upstreamLog) {
  const out = { available: false, note: '', direct: [], proxied: [] }
  let exported = false
  try { exported = typeof (await import('@proxyctl/plugins')).websocket === 'function' } catch { /* not built */ }
  const echoPort = await freePort()
  const echo = start('ws-echo', process.execPath, [path.join(BENCH, 'peers', 'ws-echo.mjs')], { cpu: LOAD_CPU, log: upstreamLog, env: { PORT: String(echoPort) } })
  await new Promise((r) => setTimeout(r, 300))
  let proxied
  if (exported) {
    const port = await freePort()
    const log = path.join(tmp, 'proxyctl-ws.log')
    const proc = start('proxyctl-ws', CLI, ['start', '--config', path.join(BENCH, 'configs', 'proxyctl-ws.config.mjs')], {
      cpu: PROXY_CPU, log, env: { PORT: String(port), WS_UPSTREAM: `127.0.0.1:${echoPort}` }
    })
    try {
      await waitReady(proc, { port })
      proxied = { proc, url: `ws://127.0.0.1:${port}/ws` }
      out.available = true
    } catch (err) {
      out.note = `\`websocket\` is exported, but proxyctl did not start with bench/configs/proxyctl-ws.config.mjs: ${err.message.split('\n')[0]} (align that config with the plugin's API)`
      await stop(proc)
    }
  } else {
    out.note = 'TODO: not measured through proxyctl: `@proxyctl/plugins` does not export `websocket` yet. bench/configs/proxyctl-ws.config.mjs is ready and run.mjs measures the tunnels as soon as the export exists; only the direct baseline ran.'
  }
  const runLoad = async (url) => {
    const proc = start('ws-load', process.execPath, [path.join(BENCH, 'load', 'ws-load.mjs'), url, String(WS_TUNNELS), String(DURATION), String(WS_MESSAGE)], { cpu: LOAD_CPU, stdout: 'pipe' })
    let text = ''
    proc.child.stdout.on('data', (d) => { text += d })
    proc.child.stderr.on('data', (d) => { text += d })
    const guard = setTimeout(() => { try { process.kill(proc.pid, 'SIGKILL') } catch {} }, (DURATION + 30) * 1000)
    await proc.exitPromise
    clearTimeout(guard)
    try { return JSON.parse(text.trim().split('\n').pop()) } catch { throw new Error(`ws-load failed: ${text}`) }
  }
  for (let round = 0; round < ROUNDS; round++) {
    progress(`websocket round ${round + 1}/${ROUNDS}: direct`)
    out.direct.push(await runLoad(`ws://127.0.0.1:${echoPort}/ws`))
    if (proxied !== undefined) {
      progress(`websocket round ${round + 1}/${ROUNDS}: through proxyctl`)
      const m = monitor(proxied.proc.pid)
      const r = await runLoad(proxied.url)
      out.proxied.push({ ...r, ...m.end() })
    }
  }
  if (proxied !== undefined) await stop(proxied.proc)
  await stop(echo)
  return out
}

/* -------------------------------------------------------------- idle connections */

/**
 * The JSON lines a load script started with `stdin: 'pipe', stdout: 'pipe'` prints: `nextLine(ms)`
 * resolves with the next one, or rejects after `ms` or when the script exits (with its stderr).
 */
function jsonLines (proc) {
  const lines = []
  let waiting
  let buf = ''
  proc.child.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); waiting?.() }
  })
  proc.child.stdin.on('error', () => {})
  let errText = ''
  proc.child.stderr.on('data', (d) => { errText += d })
  return (ms) => new Promise((resolve, reject) => {
    const done = () => { if (lines.length > 0) { clearTimeout(timer); waiting = undefined; resolve(JSON.parse(lines.shift())) } }
    const timer = setTimeout(() => { waiting = undefined; reject(new Error(`${proc.name}: no answer in ${ms} ms ${errText}`)) }, ms)
    waiting = done
    proc.exitPromise.then(() => { if (lines.length === 0) { clearTimeout(timer); reject(new Error(`${proc.name} exited: ${errText}`)) } })
    done()
  })
}

async function idleCost (target) {
  // Warm the process a little (JIT, first allocations), then take the baseline.
  for (let i = 0; i < 50; i++) await request({ port: target.port, path: '/health' })
  await new Promise((r) => setTimeout(r, 1000))
  const before = { rss: memory(target.proc.pid).rss, fds: fdCount(target.proc.pid) }
  const proc = start('idle-conns', process.execPath, [path.join(BENCH, 'load', 'idle-conns.mjs'), '127.0.0.1', String(target.port), String(IDLE_CONNS), '/health'], { cpu: LOAD_CPU, stdin: 'pipe', stdout: 'pipe' })
  const nextLine = jsonLines(proc)
  try {
    const opened = await nextLine(180_000)
    await new Promise((r) => setTimeout(r, 2000))
    let peak = 0
    for (let i = 0; i < 10; i++) { peak = Math.max(peak, memory(target.proc.pid).rss); await new Promise((r) => setTimeout(r, 100)) }
    const after = { rss: memory(target.proc.pid).rss, fds: fdCount(target.proc.pid) }
    proc.child.stdin.write('check\n')
    const still = await nextLine(10_000)
    return { label: target.label, wanted: IDLE_CONNS, opened: opened.open, failed: opened.failed, firstError: opened.firstError, openMs: opened.ms, stillOpen: still.open, before, after, peak }
  } finally {
    proc.child.stdin.end('close\n')
    await stop(proc)
  }
}

/* -------------------------------------------------------------- front door */

const SLOWLORIS_CONNS = Number(env.SLOWLORIS_CONNS ?? 5000)
const PIPELINE_REQUESTS = Number(env.PIPELINE_REQUESTS ?? 2000)

/** Runs bench/load/front-door.mjs MODE against the target; resolves with its JSON lines. */
function frontDoorLoad (target, mode, count, onLine) {
  const proc = start(`front-door-${mode}`, process.execPath, [path.join(BENCH, 'load', 'front-door.mjs'), mode, '127.0.0.1', String(target.port), String(count), '/tcp/small'], { cpu: LOAD_CPU, stdout: 'pipe' })
  const lines = []
  let buf = ''
  proc.child.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) { const line = JSON.parse(buf.slice(0, i)); buf = buf.slice(i + 1); lines.push(line); onLine?.(line) }
  })
  return proc.exitPromise.then(() => lines)
}

/**
 * 2,000 GETs pipelined on one connection (how many upstream connections the proxy uses for them,
 * sampled every 20 ms, and its RSS growth), then 5,000 slowloris connections (RSS growth, and the
 * longest any stayed open: the proxy's clientHeaderTimeout / client_header_timeout, 10 s in both
 * bench configs). A fresh process of each, so pooled connections from earlier runs do not count.
 */
async function frontDoorCost (target, upstreamPort) {
  for (let i = 0; i < 20; i++) await request({ port: target.port, path: '/health' })
  await new Promise((r) => setTimeout(r, 500))
  const pid = target.proc.pid
  const sample = (state) => { state.peak = Math.max(state.peak, memory(pid).rss); state.conns = Math.max(state.conns, connectionsTo(pid, upstreamPort)) }
  const pipe = { before: memory(pid).rss, peak: 0, conns: 0 }
  let timer = setInterval(() => sample(pipe), 20)
  const [piped] = await frontDoorLoad(target, 'pipeline', PIPELINE_REQUESTS)
  sample(pipe)
  clearInterval(timer)
  await new Promise((r) => setTimeout(r, 1000))
  const loris = { before: memory(pid).rss, peak: 0, conns: 0 }
  timer = setInterval(() => sample(loris), 100)
  const [opened, closed] = await frontDoorLoad(target, 'slowloris', SLOWLORIS_CONNS)
  clearInterval(timer)
  return { label: target.label, piped, pipe, opened, closed, loris }
}

/* -------------------------------------------------------------- TLS */

/**
 * proxyctl and nginx with `listen ... https|ssl` and one RSA 2048 certificate (made here with
 * openssl), fresh processes: the small GET over TLS with wrk (keep-alive: handshakes amortised),
 * then bench/load/tls-handshakes.mjs on the load core: full handshakes, one GET per connection.
 * Both give req/s (connections/s) per proxy core.
 */
async function tlsCost () {
  const cert = path.join(tmp, 'tls.crt')
  const key = path.join(tmp, 'tls.key')
  if (!fs.existsSync(cert)) execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' })
  return [
    { id: 'proxyctl-tls', label: 'proxyctl (https)', cmd: CLI, args: ['start', '--config', path.join(BENCH, 'configs', 'proxyctl-tls.config.mjs')], env: { CERT: cert, KEY: key }, tls: true },
    { id: 'nginx-tls', label: 'nginx (listen ... ssl)', nginx: 'proxy-tls.nginx.conf', vars: { CERT: cert, KEY: key, HTTP2: '' }, tls: true }
  ]
}

/** The same two with HTTP/2 on (`http2: true`, `listen ... ssl http2`), for h2load. */
async function h2Peers () {
  const [p, n] = await tlsCost()
  return [
    { ...p, id: 'proxyctl-h2', label: 'proxyctl (https, http2: true)', env: { ...p.env, HTTP2: '1' } },
    { ...n, id: 'nginx-h2', label: 'nginx (listen ... ssl http2)', vars: { ...n.vars, HTTP2: ' http2' } },
    // Node's own floor, when PEERS names them: the http2 core API in front of undici, and the same answering itself.
    ...[
      { id: 'lean-h2', label: 'lean node:http2 streams + undici', env: { ...p.env } },
      { id: 'lean-h2-answer', label: 'lean node:http2 streams, answering itself (no upstream)', env: { ...p.env, ANSWER: '1' } },
      { id: 'lean-h2-compat', label: 'lean node:http2 compatibility API + undici', env: { ...p.env, COMPAT: '1' } }
    ].filter((d) => env.PEERS?.split(',').includes(d.id)).map((d) => ({ ...d, cmd: process.execPath, args: [path.join(BENCH, 'peers', 'lean-h2.mjs')], tls: true }))
  ]
}

/** h2load's streams: H2_CONNECTIONS connections with H2_STREAMS streams each (100 in flight). */
const H2_CONNECTIONS = 10
const H2_STREAMS = 10

/**
 * The small GET over TLS with HTTP/2 (ALPN h2): `h2load -c10 -m10` on the load core for DURATION
 * seconds after WARMUP, against a fresh process; req/s per proxy core.
 */
async function h2Run (def, upstream) {
  const t = await startTarget(def, upstream)
  try {
    const url = `https://127.0.0.1:${t.port}/tcp/small`
    const args = ['-c', String(H2_CONNECTIONS), '-m', String(H2_STREAMS), '-t', '1', ...(WARMUP > 0 ? ['--warm-up-time', `${WARMUP}s`] : []), '-D', `${DURATION}s`, url]
    const m = monitor(t.proc.pid)
    const load = start('h2load', 'h2load', args, { cpu: LOAD_CPU, stdout: 'pipe' })
    let out = ''
    load.child.stdout.on('data', (d) => { out += d })
    await load.exitPromise
    const usage = m.end()
    const rps = Number(/finished in [\d.]+s, ([\d.]+) req\/s/.exec(out)?.[1] ?? NaN)
    const counts = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out)
    const protocol = /Application protocol: (\S+)/.exec(out)?.[1] ?? '?'
    if (Number.isNaN(rps) || counts === null) throw new Error(`h2load gave no result: ${out.slice(-300)}`)
    // The warm-up's CPU is in the monitor's share too; h2load's req/s are the measured part's.
    return { label: def.label, rps, protocol, succeeded: Number(counts[2]), failed: Number(counts[3]) + Number(counts[4]), ...usage }
  } finally {
    await stop(t.proc)
  }
}

async function tlsRun (def, upstream, logWrk) {
  const t = await startTarget(def, upstream)
  try {
    const opts = { url: `https://127.0.0.1:${t.port}/tcp/small`, cpu: LOAD_CPU, connections: CONNECTIONS, log: logWrk }
    if (WARMUP > 0) await runWrk({ ...opts, seconds: WARMUP })
    let m = monitor(t.proc.pid)
    const r = await runWrk({ ...opts, seconds: DURATION })
    const get = { ...r, ...m.end() }
    m = monitor(t.proc.pid)
    const load = start('tls-handshakes', process.execPath, [path.join(BENCH, 'load', 'tls-handshakes.mjs'), '127.0.0.1', String(t.port), '/tcp/small', String(CONNECTIONS), String(DURATION)], { cpu: LOAD_CPU, stdout: 'pipe' })
    let out = ''
    load.child.stdout.on('data', (d) => { out += d })
    await load.exitPromise
    const hs = { ...JSON.parse(out.trim().split('\n').pop() || '{}'), ...m.end() }
    return { label: def.label, get, hs }
  } finally {
    await stop(t.proc)
  }
}

/* -------------------------------------------------------------- slow readers */

/**
 * SLOW_CLIENTS clients read a SLOW_SIZE answer each (1 MiB) at SLOW_RATE (64 KiB/s) through a fresh `def` (as a buffering
 * proxy is meant for: an app that should not wait on its clients). The upstream is the load
 * script's own Node server (core LOAD_CPU), which records when each answer was completely written.
 */
async function slowReadersCost (def) {
  const load = start('slow-readers', process.execPath, [path.join(BENCH, 'load', 'slow-readers.mjs'), String(SLOW_CLIENTS), String(SLOW_SIZE), String(SLOW_RATE), String(SLOW_PAUSE)], { cpu: LOAD_CPU, stdin: 'pipe', stdout: 'pipe' })
  const nextLine = jsonLines(load)
  let t
  try {
    const { upstream } = await nextLine(10_000)
    t = await startTarget(def, { port: upstream, sock: path.join(tmp, 'no-such.sock') })
    for (let i = 0; i < 20; i++) await request({ port: t.port, path: '/health' })
    const before = memory(t.proc.pid).rss
    let peak = before
    const sampler = setInterval(() => { try { peak = Math.max(peak, memory(t.proc.pid).rss) } catch { /* gone */ } }, 100)
    load.child.stdin.write(`go ${t.port} /tcp/big\n`)
    const r = await nextLine(10 * 60_000)
    clearInterval(sampler)
    return { label: def.label, ...r, before, peak }
  } finally {
    load.child.stdin.end('close\n')
    await stop(load)
    if (t?.proc !== undefined) await stop(t.proc)
  }
}

/* -------------------------------------------------------------- report */

const fmtInt = (n) => n === null || n === undefined ? '—' : Math.round(n).toLocaleString('en-US')
const fmtMs = (n) => n === null || n === undefined ? '—' : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)
const fmtPct = (n) => n === null || n === undefined ? '—' : `${Math.round(n * 100)}%`
const fmtMiB = (kib) => kib === null || kib === undefined ? '—' : (kib / 1024).toFixed(1)
const fmtRatio = (a, b) => a === null || b === null || a === undefined || b === undefined || b === 0 ? '—' : `${(a / b).toFixed(2)}×`

function report ({ info, targets, broken, incidents, results, ws, idle, fresh, frontDoor = [], slow = [], tlsRuns = [], h2Runs = [], reloadRun = null, elapsed }) {
  const L = []
  const p = (s = '') => L.push(s)
  p('# proxyctl benchmark')
  p()
  p(`- date: ${info.date}`)
  p(`- command: \`${info.command}\``)
  p(`- machine: ${info.nprocCmd} cores (\`nproc\`), ${info.cpu}, Linux ${info.kernel}`)
  p(`- node ${info.node}, nginx ${info.nginx}, ${info.wrk}, proxyctl at git ${info.git}`)
  p(`- load: wrk -t1 -c${CONNECTIONS} (keep-alive) --latency, ${DURATION} s per run, ${WARMUP} s warm-up per target and scenario, ${ROUNDS} interleaved round${ROUNDS === 1 ? '' : 's'} (order rotated each round); every figure is the median over rounds${QUICK ? ' (QUICK: one short round, numbers are indicative only)' : ''}`)
  p(PINNING
    ? `- pinning: the proxy under test (and its children) on core ${PROXY_CPU} (\`taskset -c ${PROXY_CPU}\`); wrk on core ${LOAD_CPU}. The upstream nginx (one process) shares core ${LOAD_CPU} with wrk, so for cheap requests the load side can be the limit: read "req/s per proxy core" to compare proxies.`
    : '- pinning: OFF (fewer than 2 cores): proxy, load and upstream share the CPU; numbers are not comparable to pinned runs.')
  p(`- took ${Math.round(elapsed)} s`)
  p()
  p('Columns: **req/s** wrk Requests/sec; **spread** (max − min) ÷ median of req/s over rounds; **CPU** the proxy\'s CPU share during the run (utime+stime delta from /proc/PID/stat ÷ wall time; 100% = one full core); **req/s per core** req/s ÷ CPU share; **p50/p99** wrk latency percentiles; **errors** non-2xx/3xx responses + socket errors (connect, read, write, timeout); **peak RSS** highest of VmRSS samples (every 100 ms) and VmHWM (reset before each run), in a process that serves every scenario and round, so it carries what earlier runs left (see "Memory under the small-GET load" for fresh processes); **proxyctl ÷** proxyctl\'s figure divided by that row\'s (above 1: proxyctl does better).')
  p()
  if (broken.length > 0) {
    p('**Not measured** (failed their correctness check before the runs):')
    for (const b of broken) p(`- ${b.label}: ${b.reason}`)
    p()
  }
  if (Object.keys(incidents).length > 0) {
    p('**Incidents** (runs with no response at all; each was retried once and the retry is what the tables show):')
    for (const [label, notes] of Object.entries(incidents)) for (const n of notes) p(`- ${label}, ${n}`)
    p()
  }

  const summary = []
  for (const s of SCENARIOS) {
    const rows = s.selection ? targets.filter((t) => t.id === 'proxyctl' || t.id === 'proxyctl-many') : targets.filter((t) => t.id !== 'proxyctl-many')
    const sums = new Map(rows.map((t) => [t.id, summarize(results[s.id]?.[t.id])]))
    if ([...sums.values()].every((v) => v === null)) continue
    p(`## ${s.title}`)
    p()
    const base = sums.get('proxyctl')
    const ratioCols = s.selection ? ['1 location ÷ this (req/s)', '1 location ÷ this (per core)'] : ['proxyctl ÷ this (req/s)', 'proxyctl ÷ this (per core)']
    p(`| target | req/s | spread | CPU | req/s per core | p50 ms | p99 ms | errors | peak RSS MiB | ${ratioCols.join(' | ')} |`)
    p('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const t of rows) {
      const r = sums.get(t.id)
      if (r === null) { p(`| ${t.label} | not measured | | | | | | | | | |`); continue }
      const self = t.id === 'proxyctl'
      p(`| ${self ? `**${t.label}**` : t.label} | ${fmtInt(r.rps)} | ${r.spread === null ? '—' : fmtPct(r.spread)} | ${fmtPct(r.cpuShare)} | ${fmtInt(r.perCore)} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${fmtInt(r.errors)}${r.stalled > 0 ? ` **+ ${r.stalled} of ${r.rounds} runs with no response at all**` : ''} | ${fmtMiB(r.peakRssKiB)} | ${self ? '—' : fmtRatio(base?.rps, r.rps)} | ${self ? '—' : fmtRatio(base?.perCore, r.perCore)} |`)
    }
    p()
    const againstBaseline = s.selection ? [] : pairedRatios(results[s.id]?.proxyctl, results[s.id]?.baseline)
    if (againstBaseline.length > 1) {
      p(`Paired by round: proxyctl ÷ baseline, req/s per core, ${againstBaseline.map((x) => fmtRatio(x, 1)).join(', ')}; median **${fmtRatio(median(againstBaseline), 1)}**.`)
      p()
    }
    for (const [on, off, what] of [['proxyctl-log', 'proxyctl', 'proxyctl with the access log'], ['nginx-log', 'nginx', 'nginx with the access log'], ['proxyctl-metrics', 'proxyctl', 'proxyctl with metrics'], ['proxyctl-limitreq', 'proxyctl', 'proxyctl with limitReq']]) {
      const paired = s.selection ? [] : pairedRatios(results[s.id]?.[on], results[s.id]?.[off])
      if (paired.length > 0) {
        p(`Paired by round: ${what} on ÷ off, req/s per core, ${paired.map((x) => fmtRatio(x, 1)).join(', ')}; median **${fmtRatio(median(paired), 1)}**.`)
        p()
      }
    }
    // A cache HIT against the same process's proxied small GET of the same round.
    const hit = s.cache || s.redis ? pairedRatios(results[s.id]?.proxyctl, results['small-tcp']?.proxyctl) : []
    if (hit.length > 0) {
      p(`Paired by round: proxyctl's HIT ÷ its proxied GET 100 B (small-tcp), req/s per core, ${hit.map((x) => fmtRatio(x, 1)).join(', ')}; median **${fmtRatio(median(hit), 1)}**.`)
      p()
    }
    if (!s.selection) summary.push({ s, sums })
    else {
      const many = sums.get('proxyctl-many')
      if (base && many) p(`500 locations and 50 server names keep ${fmtPct(many.perCore / base.perCore)} of the one-location rate per core (${fmtPct(many.rps / base.rps)} of req/s). The request takes the slow path: last regex server name, then all 100 regex locations tried after the longest prefix.`)
      const paired = pairedRatios(results[s.id]?.['proxyctl-many'], results[s.id]?.proxyctl)
      if (paired.length > 1) {
        p()
        p(`Paired by round (the two runs of a round back to back, their order alternating between rounds, so a machine that speeds up or slows down over minutes weighs less): 500 locations ÷ 1 location, req/s per core, ${paired.map((x) => fmtRatio(x, 1)).join(', ')}; median **${fmtRatio(median(paired), 1)}**. This is the figure to hold against the selection target; the medians above compare runs from different minutes.`)
      }
      p()
    }
  }

  if (summary.length > 0) {
    const peers = targets.filter((t) => t.id !== 'proxyctl' && t.id !== 'proxyctl-many')
    p('## Summary: proxyctl ÷ peer, req/s per proxy core (req/s in parentheses)')
    p()
    p(`| scenario | proxyctl req/s per core | ${peers.map((t) => t.label).join(' | ')} |`)
    p(`| --- | ---: | ${peers.map(() => '---:').join(' | ')} |`)
    for (const { s, sums } of summary) {
      const b = sums.get('proxyctl')
      p(`| ${s.title} | ${fmtInt(b?.perCore)} | ${peers.map((t) => { const r = sums.get(t.id); return r === null ? '—' : `${fmtRatio(b?.perCore, r.perCore)} (${fmtRatio(b?.rps, r.rps)})` }).join(' | ')} |`)
    }
    p()
  }

  p(`## WebSocket echo, ${WS_TUNNELS} tunnels, ${WS_MESSAGE} B messages (one in flight per tunnel)`)
  p()
  if (ws === null) p('Not run.')
  else {
    if (ws.note) { p(ws.note); p() }
    const d = ws.direct.length > 0 ? { rt: median(ws.direct.map((r) => r.tripsPerSec)), mb: median(ws.direct.map((r) => r.mbPerSecEachWay)), p50: median(ws.direct.map((r) => r.p50)), p99: median(ws.direct.map((r) => r.p99)), errors: median(ws.direct.map((r) => r.errors)), open: median(ws.direct.map((r) => r.open)) } : null
    const x = ws.proxied.length > 0 ? { rt: median(ws.proxied.map((r) => r.tripsPerSec)), mb: median(ws.proxied.map((r) => r.mbPerSecEachWay)), p50: median(ws.proxied.map((r) => r.p50)), p99: median(ws.proxied.map((r) => r.p99)), errors: median(ws.proxied.map((r) => r.errors)), open: median(ws.proxied.map((r) => r.open)), cpu: median(ws.proxied.map((r) => r.cpuShare)), rss: median(ws.proxied.map((r) => r.peakRssKiB)) } : null
    p('| path | tunnels open | round trips/s | MiB/s each way | p50 ms | p99 ms | errors | proxy CPU | round trips/s per proxy core | proxy peak RSS MiB |')
    p('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    if (d) p(`| direct (client → echo server) | ${d.open} | ${fmtInt(d.rt)} | ${d.mb.toFixed(1)} | ${fmtMs(d.p50)} | ${fmtMs(d.p99)} | ${fmtInt(d.errors)} | — | — | — |`)
    if (x) p(`| through proxyctl | ${x.open} | ${fmtInt(x.rt)} | ${x.mb.toFixed(1)} | ${fmtMs(x.p50)} | ${fmtMs(x.p99)} | ${fmtInt(x.errors)} | ${fmtPct(x.cpu)} | ${fmtInt(x.cpu > 0 ? x.rt / x.cpu : null)} | ${fmtMiB(x.rss)} |`)
    else p('| through proxyctl | TODO | | | | | | | | |')
    if (d && x) { p(); p(`proxyctl ÷ direct, round trips/s: ${fmtRatio(x.rt, d.rt)}. The echo server and the client share core ${LOAD_CPU}; the direct path has no proxy hop at all.`) }
  }
  p()

  if (reloadRun !== null) {
    p(`## Reload under load: ${RELOADS} reloads during ${RELOAD_SECONDS} s (proxyctl)`)
    p()
    if (reloadRun.error) p(`failed: ${reloadRun.error}`)
    else {
      const r = reloadRun
      const ok = r.reloads.filter((x) => x.code === 0 && x.served).length
      const times = r.reloads.map((x) => x.ms)
      p(`GET 100 B over TCP, two wrk runs at once: wrk -t1 -c${CONNECTIONS} keep-alive, and wrk -t1 -c${RELOAD_NEW_CONNS} with \`Connection: close\` (a new connection per request, which a closed listener would refuse). Each reload rewrites one location of the config, sends SIGHUP and waits for the process's status file to say the new config serves (what \`proxyctl reload\` does after validating the config itself); the location is then asked at once. Failed requests: wrk's non-2xx plus socket errors; refused: wrk's connect errors.`)
      p()
      p(`Reloads: ${ok} of ${r.reloads.length} served, with the new location answering at once; SIGHUP to serving took median ${fmtInt(median(times))} ms, longest ${fmtInt(Math.max(...times))} ms (bundling the TypeScript config, building the app).${r.late > 0 ? ` ${r.late} reload(s) started after the load had ended (reloads slower than their spacing).` : ''}`)
      p()
      p('| run | req/s keep-alive | failed (keep-alive) | p50 ms | p99 ms | req/s new connections | failed (new connections) | refused connections | p99 ms (new connections) |')
      p('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
      const row = (name, k, n) => p(`| ${name} | ${fmtInt(k.rps)} | ${fmtInt(k.errors)} | ${fmtMs(k.p50)} | ${fmtMs(k.p99)} | ${fmtInt(n.rps)} | ${fmtInt(n.errors)} | ${fmtInt(k.connectErrors + n.connectErrors)} | ${fmtMs(n.p99)} |`)
      row(`with ${r.reloads.length} reloads`, r.withKeepAlive, r.withNew)
      row('without reloads', r.quietKeepAlive, r.quietNew)
      p()
      p(`p99 with ÷ without reloads (keep-alive): ${fmtRatio(r.withKeepAlive.p99, r.quietKeepAlive.p99)}.`)
    }
    p()
  }

  if (fresh.length > 0) {
    p('## Memory under the small-GET load (fresh process per target)')
    p()
    p(`Each target started anew, ${WARMUP} s of warm-up, then ${DURATION} s of GET 100 B over TCP (wrk -t1 -c${CONNECTIONS}); peak RSS as in the tables above. Each runs as shipped: proxyctl through its bin (its shebang sets Node's \`${cliNodeFlags()}\`), the Node peers with Node's defaults.`)
    p()
    p('| target | RSS at start MiB | peak RSS under load MiB | req/s | errors |')
    p('| --- | ---: | ---: | ---: | ---: |')
    for (const r of fresh) {
      if (r.error) { p(`| ${r.label} | failed: ${r.error} | | | |`); continue }
      p(`| ${r.label} | ${fmtMiB(r.before)} | ${fmtMiB(r.peak)} | ${fmtInt(r.rps)} | ${fmtInt(r.errors)} |`)
    }
    p()
  }

  if (slow.length > 0) {
    p(`## Slow readers: ${fmtInt(SLOW_CLIENTS)} clients reading ${SLOW_SIZE / 1024 / 1024} MiB each at ${SLOW_RATE / 1024} KiB/s${SLOW_PAUSE > 0 ? `, after ${SLOW_PAUSE / 1000} s of reading nothing` : ''}`)
    p()
    p('Each proxy started fresh in front of a Node upstream on core ' + LOAD_CPU + ' that records when it has completely written each answer. **upstream done** is when the last answer was written (from the first request); **held per answer** is, for each answer, the time from its request arriving at the upstream to its last byte written (the longest, and the 99th percentile): how long one app worker is held by a slow client; **clients done** when the last client had every byte; RSS of the proxy process before and at its peak (sampled every 100 ms).')
    p()
    p('| proxy | answers complete | upstream done s | held per answer, longest s | p99 s | clients done s | RSS before MiB | peak RSS MiB | growth MiB |')
    p('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    const secs = (ms) => ms === null || ms === undefined ? '—' : (ms / 1000).toFixed(2)
    for (const r of slow) {
      if (r.error) { p(`| ${r.label} | failed: ${r.error} | | | | | | | |`); continue }
      p(`| ${r.label} | ${fmtInt(r.ok)} of ${fmtInt(r.count)}${r.failed ? ` (first failure: ${r.firstError})` : ''} | ${secs(r.upstreamDoneMs)} | ${secs(r.heldMaxMs)} | ${secs(r.heldP99Ms)} | ${(r.clientsDoneMs / 1000).toFixed(1)} | ${fmtMiB(r.before)} | ${fmtMiB(r.peak)} | ${fmtMiB(r.peak - r.before)} |`)
    }
    p()
  }

  p(`## Idle keep-alive connections: ${fmtInt(IDLE_CONNS)} clients, one request each, then idle`)
  p()
  p('RSS of the proxy process before (after 50 warm-up requests) and with the connections open (2 s after the last one opened). Opened from a Node script on core ' + LOAD_CPU + ' over loopback.')
  p()
  p('| proxy | opened | still open at measure | RSS before MiB | RSS with connections MiB | growth MiB | KiB per connection | fds before → with |')
  p('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of idle) {
    if (r.error) { p(`| ${r.label} | failed: ${r.error} | | | | | | |`); continue }
    const growth = r.after.rss - r.before.rss
    p(`| ${r.label} | ${fmtInt(r.opened)}${r.failed ? ` (${r.failed} failed: ${r.firstError})` : ''} | ${fmtInt(r.stillOpen)} | ${fmtMiB(r.before.rss)} | ${fmtMiB(r.after.rss)} | ${fmtMiB(growth)} | ${r.stillOpen > 0 ? (growth / r.stillOpen).toFixed(2) : '—'} | ${r.before.fds} → ${r.after.fds} |`)
  }
  p()
  if (frontDoor.length > 0) {
    p(`## The front door: ${fmtInt(PIPELINE_REQUESTS)} pipelined GETs on one connection, then ${fmtInt(SLOWLORIS_CONNS)} slowloris connections`)
    p()
    p('A fresh process of each proxy. Pipelined: the most upstream connections the proxy held while answering them (sampled every 20 ms), RSS growth at peak. Slowloris: each connection sends a request line, then a header line a second, never ending the head; RSS growth at peak, and the longest any one stayed open (both configs close a head after 10 s: clientHeaderTimeout / client_header_timeout).')
    p()
    p('| proxy | pipelined answered | ms | upstream conns at most | RSS growth MiB | slowloris opened | closed | longest open s | RSS growth MiB |')
    p('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const r of frontDoor) {
      if (r.error) { p(`| ${r.label} | failed: ${r.error} | | | | | | | |`); continue }
      p(`| ${r.label} | ${fmtInt(r.piped?.answers)} | ${fmtInt(r.piped?.ms)} | ${r.pipe.conns} | ${fmtMiB(r.pipe.peak - r.pipe.before)} | ${fmtInt(r.opened?.opened)} | ${fmtInt(r.closed?.closed)} | ${r.closed ? (r.closed.longestMs / 1000).toFixed(1) : '—'} | ${fmtMiB(r.loris.peak - r.loris.before)} |`)
    }
    p()
  }
  if (tlsRuns.length > 0) {
    p('## TLS: small GET over HTTP/1.1 TLS, and new TLS connections per second')
    p()
    p(`A fresh process of each, one RSA 2048 certificate, TLS 1.3. Keep-alive: \`wrk -t1 -c${CONNECTIONS}\` on \`https://.../tcp/small\`. New connections: bench/load/tls-handshakes.mjs, ${CONNECTIONS} clients each doing a full handshake (no resumption), one GET with \`Connection: close\`, in a loop. Per core: divided by the proxy's CPU share.`)
    p()
    p('| proxy | keep-alive req/s | CPU | req/s per core | p99 ms | new connections/s | CPU | per core | failed |')
    p('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const r of tlsRuns) {
      if (r.error) { p(`| ${r.label} | failed: ${r.error} | | | | | | | |`); continue }
      p(`| ${r.label} | ${fmtInt(r.get.rps)} | ${fmtPct(r.get.cpuShare)} | ${fmtInt(r.get.rps / r.get.cpuShare)} | ${fmtMs(r.get.p99)} | ${fmtInt(r.hs.perSecond)} | ${fmtPct(r.hs.cpuShare)} | ${fmtInt(r.hs.perSecond / r.hs.cpuShare)} | ${r.hs.failed ?? '—'} |`)
    }
    const [a, b] = tlsRuns
    if (a?.get !== undefined && b?.get !== undefined) p(`\nproxyctl ÷ nginx per core: keep-alive ${fmtRatio(a.get.rps / a.get.cpuShare, b.get.rps / b.get.cpuShare)}, new connections ${fmtRatio(a.hs.perSecond / a.hs.cpuShare, b.hs.perSecond / b.hs.cpuShare)}`)
    p()
  }
  if (h2Runs.length > 0) {
    p('## HTTP/2: small GET over TLS with h2')
    p()
    p(`A fresh process of each, the TLS scenario's certificate, ALPN h2. \`h2load -c${H2_CONNECTIONS} -m${H2_STREAMS} -t1\` (${H2_CONNECTIONS * H2_STREAMS} streams in flight) on \`https://.../tcp/small\`. Per core: divided by the proxy's CPU share.`)
    p()
    p('| proxy | protocol | req/s | CPU | req/s per core | succeeded | failed |')
    p('| --- | --- | ---: | ---: | ---: | ---: | ---: |')
    for (const r of h2Runs) {
      if (r.error) { p(`| ${r.label} | failed: ${r.error} | | | | | |`); continue }
      p(`| ${r.label} | ${r.protocol} | ${fmtInt(r.rps)} | ${fmtPct(r.cpuShare)} | ${fmtInt(r.rps / r.cpuShare)} | ${fmtInt(r.succeeded)} | ${fmtInt(r.failed)} |`)
    }
    const [a, b] = h2Runs
    if (a?.rps !== undefined && b?.rps !== undefined) p(`\nproxyctl ÷ nginx per core: ${fmtRatio(a.rps / a.cpuShare, b.rps / b.cpuShare)}`)
    p()
  }
  return L.join('\n')
}

/* -------------------------------------------------------------- main */

async function main () {
  const t0 = Date.now()
  ensureTools()
  if (!fs.existsSync(CLI)) throw new Error('packages/cli/dist/bin.js is missing: run `pnpm build` first (`pnpm bench` does)')
  // Run as `npx proxyctl` runs it: the executable itself, so its shebang's Node flags apply.
  for (const def of [...peerDefs(), MANY]) if (def.cmd?.endsWith('bin.js')) fs.chmodSync(def.cmd, 0o755)
  const info = machine() // before pinning: nproc counts the cores this process may use
  if (PINNING) {
    // This script (and what it spawns without a core of its own) stays off the proxy's core.
    try { execFileSync('taskset', ['-a', '-pc', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' }) } catch { /* best effort */ }
  } else progress('fewer than 2 cores: running without pinning')

  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'proxyctl-bench-'))
  progress(`temp dir ${tmp}${KEEP_TMP ? ' (kept)' : ''}`)
  for (const side of ['tcp', 'unix']) {
    fs.mkdirSync(path.join(tmp, 'www', side), { recursive: true })
    fs.writeFileSync(path.join(tmp, 'www', side, 'small'), Buffer.alloc(SMALL, 0x61))
    fs.writeFileSync(path.join(tmp, 'www', side, 'big'), Buffer.alloc(BIG, 0x62))
  }
  // The gzip scenario's answer: 100 KiB of JSON, as an API would send (served as application/json).
  fs.mkdirSync(path.join(tmp, 'www', 'gzip'), { recursive: true })
  fs.writeFileSync(path.join(tmp, 'www', 'gzip', 'data.json'), gzipJson())

  // The upstream: one nginx process on the load core, over TCP and a unix socket.
  const upstream = { port: await freePort(), sock: path.join(tmp, 'upstream.sock') }
  fs.writeFileSync(path.join(tmp, 'upstream.conf'), render('upstream.nginx.conf', { DIR: tmp, UPSTREAM_PORT: upstream.port, UPSTREAM_SOCK: upstream.sock }))
  progress(`upstream nginx on 127.0.0.1:${upstream.port} and ${upstream.sock}`)
  const upstreamLog = path.join(tmp, 'upstream.log')
  const up = start('upstream-nginx', 'nginx', ['-p', tmp, '-e', path.join(tmp, 'upstream-error.log'), '-c', path.join(tmp, 'upstream.conf')], { cpu: LOAD_CPU, log: upstreamLog })
  await waitReady(up, { port: upstream.port })
  await waitReady(up, { socketPath: upstream.sock })

  // The cache-redis scenario's Redis, on the load core, on a unix socket in the temp dir.
  if ((env.SCENARIOS === undefined || env.SCENARIOS.split(',').includes('cache-redis')) && spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0) {
    const sock = path.join(tmp, 'redis.sock')
    start('redis', 'redis-server', ['--port', '0', '--unixsocket', sock, '--save', '', '--appendonly', 'no'], { cpu: LOAD_CPU, log: path.join(tmp, 'redis.log') })
    for (let i = 0; i < 50 && !fs.existsSync(sock); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    if (fs.existsSync(sock)) redisUrl = `unix:${sock}`
    else progress('redis-server did not start: no cache-redis row')
  }

  const only = env.PEERS?.split(',').map((s) => s.trim())
  const wanted = (id) => env.SCENARIOS === undefined || env.SCENARIOS.split(',').includes(id)
  const defs = [...peerDefs(), MANY].filter((d) => d.id === 'proxyctl' ||
    (d.id === 'proxyctl-many' ? wanted('selection') : only === undefined ? !d.id.endsWith('-log') && d.id !== 'proxyctl-limitreq' && !d.id.endsWith('-metrics') : only.includes(d.id)))
  const targets = []
  const broken = []
  for (const def of defs) {
    progress(`starting ${def.label}`)
    try {
      const t = await startTarget(def, upstream)
      await sanityCheck(t)
      targets.push(t)
      progress(`  ${def.label} on 127.0.0.1:${t.port} (pid ${t.proc.pid})`)
    } catch (err) {
      progress(`  ${def.label}: ${err.message}`)
      broken.push({ label: def.label, reason: err.message.split('\n')[0] })
    }
  }

  const scenarios = env.SCENARIOS === undefined ? SCENARIOS : SCENARIOS.filter((s) => env.SCENARIOS.split(',').includes(s.id))
  const results = {}
  const incidents = {}
  const wrkLog = path.join(tmp, 'wrk.log')
  const logWrk = (text) => fs.appendFileSync(wrkLog, text + '\n')
  for (let round = 0; round < ROUNDS; round++) {
    for (const [si, s] of scenarios.entries()) {
      const list = s.selection
        ? targets.filter((t) => t.id === 'proxyctl' || t.id === 'proxyctl-many')
        : s.gzip || s.cache ? targets.filter((t) => t.id === 'proxyctl' || t.id.startsWith('nginx'))
          : s.redis ? targets.filter((t) => t.id === 'proxyctl' && redisUrl !== undefined)
            : targets.filter((t) => t.id !== 'proxyctl-many')
      const k = list.length === 0 ? 0 : (round + si) % list.length
      const order = [...list.slice(k), ...list.slice(0, k)]
      for (const t of order) {
        const url = `${t.url}${s.path}`
        const opts = { url, script: s.script, host: t.host, headers: s.headers, cpu: LOAD_CPU, connections: CONNECTIONS, log: logWrk }
        if (t.proc.exited) { progress(`${t.label} has exited (code ${t.proc.code}); skipping`); continue }
        try {
          if (round === 0 && WARMUP > 0) await runWrk({ ...opts, seconds: WARMUP })
          let m = monitor(t.proc.pid)
          let r = await runWrk({ ...opts, seconds: DURATION })
          let usage = m.end()
          if (r.requests === 0) {
            // Not one response in the whole run: say what a single request gets now, then retry
            // once. A target that hangs for good stays flagged (0 responses) in the report.
            const probe = await request({ port: t.port, path: s.path, headers: t.host ? { host: t.host } : {}, timeout: 5000 })
              .then((x) => `status ${x.status}, ${x.body.length} bytes`, (err) => err.message)
            const note = `round ${round + 1} ${s.id}: no response in ${DURATION} s; a single request then got: ${probe}; retried once`
            progress(`${t.id}: ${note}`)
            ;(incidents[t.label] ??= []).push(note)
            m = monitor(t.proc.pid)
            r = await runWrk({ ...opts, seconds: DURATION })
            usage = m.end()
          }
          ;((results[s.id] ??= {})[t.id] ??= []).push({ ...r, ...usage })
          progress(`round ${round + 1}/${ROUNDS} ${s.id} ${t.id}: ${fmtInt(r.rps)} req/s, CPU ${fmtPct(usage.cpuShare)}, p99 ${fmtMs(r.p99)} ms, errors ${r.errors}${r.requests === 0 ? ' — NO RESPONSES (target hung?)' : ''}`)
        } catch (err) {
          if (isShuttingDown()) return
          progress(`round ${round + 1}/${ROUNDS} ${s.id} ${t.id}: ${err.message}`)
        }
      }
    }
  }

  if (isShuttingDown()) return
  // The load rounds reuse one process per target across scenarios, so their peak RSS carries what
  // the 1 MiB and upload runs left behind. Memory under the small-GET load alone: fresh processes.
  const fresh = []
  if (wanted('memory')) {
    for (const def of peerDefs().filter((d) => d.id === 'proxyctl' || (only === undefined ? !d.id.endsWith('-log') && d.id !== 'proxyctl-limitreq' && !d.id.endsWith('-metrics') : only.includes(d.id)))) {
      let t
      try {
        t = await startTarget(def, upstream)
        const before = memory(t.proc.pid).rss
        const opts = { url: `${t.url}/tcp/small`, cpu: LOAD_CPU, connections: CONNECTIONS, log: logWrk }
        if (WARMUP > 0) await runWrk({ ...opts, seconds: WARMUP })
        const m = monitor(t.proc.pid)
        const r = await runWrk({ ...opts, seconds: DURATION })
        const usage = m.end()
        fresh.push({ label: def.label, before, rps: r.rps, errors: r.errors, peak: usage.peakRssKiB })
        progress(`memory ${def.id}: ${fmtMiB(before)} MiB at start, peak ${fmtMiB(usage.peakRssKiB)} MiB under small-GET load`)
      } catch (err) {
        if (isShuttingDown()) return
        fresh.push({ label: def.label, error: err.message.split('\n')[0] })
      } finally {
        if (t?.proc !== undefined) await stop(t.proc)
      }
    }
  }

  if (isShuttingDown()) return
  let ws = null
  if (env.SCENARIOS === undefined || env.SCENARIOS.split(',').includes('websocket')) {
    try { ws = await wsScenario(upstreamLog) } catch (err) { ws = { note: `failed: ${err.message}`, direct: [], proxied: [] } }
  }

  if (isShuttingDown()) return
  const idle = []
  if (env.SCENARIOS === undefined || env.SCENARIOS.split(',').includes('idle')) {
    // A fresh proxyctl (same config), so the baseline is not what the load runs left behind.
    const fresh = { ...peerDefs()[0], id: 'proxyctl-idle', label: 'proxyctl (fresh process)' }
    for (const def of [fresh, targets.find((t) => t.id === 'nginx')].filter(Boolean)) {
      let t = def
      try {
        if (def.proc === undefined) t = await startTarget(def, upstream)
        progress(`idle connections: ${def.label}`)
        idle.push(await idleCost(t))
      } catch (err) {
        idle.push({ label: def.label, error: err.message.split('\n')[0] })
      } finally {
        if (def.proc === undefined && t.proc !== undefined) await stop(t.proc)
      }
    }
  }

  if (isShuttingDown()) return
  const frontDoor = []
  if (env.SCENARIOS === undefined || env.SCENARIOS.split(',').includes('front-door')) {
    const fresh = { ...peerDefs()[0], id: 'proxyctl-front-door', label: 'proxyctl (fresh process)' }
    const nginxDef = peerDefs().find((d) => d.id === 'nginx')
    for (const def of [fresh, nginxDef && { ...nginxDef, id: 'nginx-front-door', label: `${nginxDef.label} (fresh process)` }].filter(Boolean)) {
      let t
      try {
        t = await startTarget(def, upstream)
        progress(`front door: ${def.label}`)
        frontDoor.push(await frontDoorCost(t, upstream.port))
      } catch (err) {
        frontDoor.push({ label: def.label, error: err.message.split('\n')[0] })
      } finally {
        if (t?.proc !== undefined) await stop(t.proc)
      }
    }
  }

  if (isShuttingDown()) return
  const tlsRuns = []
  if (wanted('tls')) {
    for (const def of await tlsCost()) {
      try {
        progress(`tls: ${def.label}`)
        const r = await tlsRun(def, upstream, logWrk)
        tlsRuns.push(r)
        progress(`  keep-alive ${fmtInt(r.get.rps)} req/s at CPU ${fmtPct(r.get.cpuShare)}; new connections ${fmtInt(r.hs.perSecond)}/s at CPU ${fmtPct(r.hs.cpuShare)}, ${r.hs.failed} failed`)
      } catch (err) {
        if (isShuttingDown()) return
        tlsRuns.push({ label: def.label, error: err.message.split('\n')[0] })
      }
    }
  }

  if (isShuttingDown()) return
  const h2Runs = []
  if (wanted('h2')) {
    for (const def of await h2Peers()) {
      try {
        progress(`h2: ${def.label}`)
        const r = await h2Run(def, upstream)
        h2Runs.push(r)
        progress(`  ${fmtInt(r.rps)} req/s (${r.protocol}) at CPU ${fmtPct(r.cpuShare)}, ${r.failed} failed`)
      } catch (err) {
        if (isShuttingDown()) return
        h2Runs.push({ label: def.label, error: err.message.split('\n')[0] })
      }
    }
  }

  if (isShuttingDown()) return
  let reloadRun = null
  if (wanted('reload')) {
    progress(`reload: ${RELOADS} reloads during ${RELOAD_SECONDS} s of load`)
    try { reloadRun = await reloadScenario(upstream, logWrk) } catch (err) {
      if (isShuttingDown()) return
      reloadRun = { error: err.message.split('\n')[0] }
    }
  }

  if (isShuttingDown()) return
  const slow = []
  if (wanted('slow-readers')) {
    // Fresh processes: proxyctl, nginx as shipped (proxy_buffering on, default buffers), and the
    // baseline when there is one (a proxyctl without buffering is held back by its clients).
    for (const def of peerDefs().filter((d) => d.id === 'proxyctl' || d.id === 'nginx' || d.id === 'baseline')) {
      try {
        progress(`slow readers: ${def.label}`)
        const r = await slowReadersCost({ ...def, id: `${def.id}-slow` })
        slow.push(r)
        progress(`  upstream done ${(r.upstreamDoneMs / 1000).toFixed(1)} s, last request in at ${(r.lastArrivalMs / 1000).toFixed(1)} s, held per answer at most ${(r.heldMaxMs / 1000).toFixed(2)} s, clients ${(r.clientsDoneMs / 1000).toFixed(1)} s, ${r.ok}/${r.count} ok, RSS +${fmtMiB(r.peak - r.before)} MiB`)
      } catch (err) {
        if (isShuttingDown()) return
        slow.push({ label: def.label, error: err.message.split('\n')[0] })
      }
    }
  }

  if (isShuttingDown()) return
  // Anything a target logged at warn or above during the runs is worth a look.
  for (const t of targets) {
    const errLog = t.nginx !== undefined ? tail(path.join(tmp, `${t.id}-proxy-error.log`), 200) + '\n' + tail(path.join(tmp, `${t.id}-error.log`), 200) : tail(t.proc.log, 200)
    const bad = errLog.split('\n').filter((l) => /"level":(40|50|60)|\[(warn|error|crit|alert|emerg)\]/.test(l))
    if (bad.length > 0) progress(`${t.label} logged ${bad.length} warnings/errors; first: ${bad[0].slice(0, 300)}`)
  }

  for (const t of targets) await stop(t.proc)
  await stop(up)

  if (isShuttingDown()) return
  const md = report({ info, targets, broken, incidents, results, ws, idle, fresh, frontDoor, slow, tlsRuns, h2Runs, reloadRun, elapsed: (Date.now() - t0) / 1000 })
  fs.mkdirSync(path.join(BENCH, 'results'), { recursive: true })
  fs.writeFileSync(path.join(BENCH, 'results', 'latest.md'), md + '\n')
  process.stdout.write(md + '\n')
  progress(`wrote bench/results/latest.md (${Math.round((Date.now() - t0) / 1000)} s)`)
}

main().then(() => cleanup(), async (err) => {
  if (isShuttingDown()) return // a signal is being handled
  progress(`failed: ${err.stack ?? err}`)
  await cleanup()
  process.exitCode = 1
})
