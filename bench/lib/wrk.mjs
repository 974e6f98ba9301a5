// wrk: one bounded run, its text output parsed.
import { start } from './proc.mjs'

/** Runs wrk (-t1 -c50 keep-alive --latency) on core `cpu` for `seconds`; resolves to its parsed result. */
export async function runWrk ({ url, seconds, connections = 50, script, host, headers = [], cpu, log }) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency']
  if (script !== undefined) args.push('-s', script)
  if (host !== undefined) args.push('-H', `Host: ${host}`)
  for (const h of headers) args.push('-H', h)
  args.push(url)
  let out = ''
  const proc = start('wrk', 'wrk', args, { cpu, stdout: 'pipe' })
  proc.child.stdout.on('data', (d) => { out += d })
  proc.child.stderr.on('data', (d) => { out += d })
  // wrk stops itself after `seconds`; this only guards against a hang.
  const guard = setTimeout(() => { try { process.kill(proc.pid, 'SIGKILL') } catch {} }, (seconds + 20) * 1000)
  await proc.exitPromise
  clearTimeout(guard)
  if (log !== undefined) log(`$ wrk ${args.join(' ')}\n${out}`)
  const parsed = parseWrk(out)
  if (proc.code !== 0 || parsed === null) throw new Error(`wrk failed (exit ${proc.code ?? proc.signal}):\n${out}`)
  return parsed
}

const UNIT = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
function ms (text) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text)
  return m === null ? null : Number(m[1]) * UNIT[m[2]]
}

export function parseWrk (out) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)
  if (rps === null) return null
  const lat = (p) => { const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out); return m === null ? null : ms(m[1]) }
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const socketErrors = sock === null ? 0 : sock.slice(1).reduce((a, b) => a + Number(b), 0)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0)
  const connectErrors = sock === null ? 0 : Number(sock[1])
  return { rps: Number(rps[1]), p50: lat(50), p99: lat(99), non2xx, socketErrors, connectErrors, errors: non2xx + socketErrors, requests }
}
