// CPU per request, A against B: proxyctl from several checkouts (or one checkout with different
// env), all started at once on the proxy core, wrk alternating between them in short runs, each
// run's utime+stime from /proc divided by the requests it served; ratios paired by round. Steadier
// than req/s per core on a machine whose speed swings: the two sides of a pair are seconds apart.
//
//   node bench/cpu-ab.mjs TARGET TARGET...        TARGET: /path/to/checkout[@NAME=value,...]
//   ROUNDS=10 DUR=3 URLPATH=/tcp/small SCRIPT=bench/load/upload.lua node bench/cpu-ab.mjs ...
//
// Each checkout must be built (`pnpm build`); each runs bench/configs/proxyctl.config.mjs with the
// bin's own Node flags, env NAME=value on top (`~` stands for `=` inside a value, e.g.
// `ACCESS_LOG=/tmp/a.log` turns the access log on). The upstream is this checkout's
// bench/configs/upstream.nginx.conf on core 1, beside wrk, as in bench/run.mjs.
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const BENCH = path.dirname(fileURLToPath(import.meta.url))
const targets = process.argv.slice(2)
if (targets.length === 0) { console.error('usage: node bench/cpu-ab.mjs /path/to/checkout[@NAME=value,...] ...'); process.exit(2) }
const ROUNDS = Number(process.env.ROUNDS ?? 10)
const DUR = process.env.DUR ?? '3'
const URLPATH = process.env.URLPATH ?? '/tcp/small'
const UPSTREAM_PORT = 18999
const CLK_TCK = 100

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'proxyctl-cpu-ab-'))
const kids = []
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** The bin's Node flags, from its shebang (`#!/usr/bin/env -S node FLAGS`). */
function binFlags (bin) {
  const first = fs.readFileSync(bin, 'utf8').split('\n', 1)[0] ?? ''
  return first.split(/\s+/).filter((w) => w.startsWith('--'))
}

/** utime+stime of a process in µs. */
function cpuMicros (pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) * (1e6 / CLK_TCK)
}

function wrk (port, seconds) {
  const args = ['-c', '1', 'wrk', '-t1', '-c50', `-d${seconds}s`, ...(process.env.SCRIPT ? ['-s', process.env.SCRIPT] : []), `http://127.0.0.1:${port}${URLPATH}`]
  const out = execFileSync('taskset', args, { encoding: 'utf8' })
  return Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN)
}

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1]

try {
  fs.mkdirSync(path.join(tmp, 'www', 'tcp'), { recursive: true })
  fs.writeFileSync(path.join(tmp, 'www', 'tcp', 'small'), 'a'.repeat(100))
  const conf = fs.readFileSync(path.join(BENCH, 'configs', 'upstream.nginx.conf'), 'utf8')
    .replaceAll('{{DIR}}', tmp).replaceAll('{{UPSTREAM_PORT}}', String(UPSTREAM_PORT)).replaceAll('{{UPSTREAM_SOCK}}', path.join(tmp, 'up.sock'))
  fs.writeFileSync(path.join(tmp, 'up.conf'), conf)
  kids.push(spawn('taskset', ['-c', '1', 'nginx', '-c', path.join(tmp, 'up.conf'), '-e', path.join(tmp, 'up-error.log')], { stdio: 'ignore' }))

  const procs = targets.map((spec, i) => {
    const [repo, extra] = spec.split('@')
    const env = { ...process.env, PORT: String(18100 + i), UPSTREAM_TCP: `127.0.0.1:${UPSTREAM_PORT}`, UPSTREAM_SOCK: path.join(tmp, 'up.sock') }
    for (const kv of extra ? extra.split(',') : []) env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1).replaceAll('~', '=')
    const bin = path.join(repo, 'packages', 'cli', 'dist', 'bin.js')
    const child = spawn('taskset', ['-c', '0', process.execPath, ...binFlags(bin), bin, 'start', '--config', path.join(repo, 'bench', 'configs', 'proxyctl.config.mjs')], { env, cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] })
    kids.push(child)
    return { spec, port: 18100 + i, child, micros: [] }
  })
  await sleep(6000)
  for (const p of procs) wrk(p.port, 3) // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const p of r % 2 === 0 ? procs : [...procs].reverse()) {
      const before = cpuMicros(p.child.pid)
      const n = wrk(p.port, DUR)
      p.micros.push((cpuMicros(p.child.pid) - before) / n)
    }
    console.log(`round ${r + 1}: ` + procs.map((p) => `${p.micros.at(-1).toFixed(1)} µs`).join('  '))
  }
  for (const p of procs) console.log(`median ${median(p.micros).toFixed(1)} µs/request  ${p.spec}`)
  const [a] = procs
  for (const p of procs.slice(1)) console.log(`paired cost ratio, median: ${median(a.micros.map((x, i) => p.micros[i] / x)).toFixed(3)}  ${p.spec} ÷ ${a.spec}`)
} finally {
  for (const k of kids) k.kill('SIGTERM')
  await sleep(500)
  fs.rmSync(tmp, { recursive: true, force: true })
}
