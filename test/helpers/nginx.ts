/**
 * What the nginx comparison scripts (test/{routing,proxy,static,front-door}/fixtures/nginx-compare.ts)
 * share: a one-process nginx config rooted in a temp dir, `nginx -t` on one, waiting for nginx to
 * listen, and counting differences between nginx's answers and our tables.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { Teardown } from './lifecycle.js'

/**
 * nginx.conf for one foreground process with everything under `dir`; `http` goes inside `http {}`,
 * `main` (e.g. load_module lines) before it.
 */
export function nginxMainConf (dir: string, http: string, main = ''): string {
  return `daemon off;
master_process off;
${main}pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
${http}}
`
}

/**
 * `nginx -t` on `conf` (written to `dir`/test.conf): null when nginx accepts it, else its
 * [emerg] message without the file and line.
 */
export function nginxConfigError (nginx: string, dir: string, conf: string): string | null {
  writeFileSync(path.join(dir, 'test.conf'), conf)
  const r = spawnSync(nginx, ['-t', '-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/test.conf`], { encoding: 'utf8' })
  if (r.status === 0) return null
  return /\[emerg\] (.*?)(?: in \/\S+:\d+)?$/m.exec(r.stderr)?.[1] ?? r.stderr
}

/**
 * nginx configured as proxyctl is by default, for the side-by-side comparisons: Debian's stock
 * types and default_type (README, Static files: `types`, `defaultType`).
 */
export const NGINX_TYPES = 'include /etc/nginx/mime.types; default_type application/octet-stream;'

/**
 * nginx's upstream requests made like proxyctl's (README, Proxying): HTTP/1.1 with
 * `Connection: keep-alive`. A `proxy_set_header` at a level drops the inherited ones, so a
 * location that sets its own repeats this.
 */
export const NGINX_HTTP11_UPSTREAM = 'proxy_http_version 1.1; proxy_set_header Connection keep-alive;'

/** Resolves once something accepts on 127.0.0.1:`port` (5 s at most). */
export async function waitForPort (port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`)
}

/** Compares nginx's answer with the table's; prints differences (and with `print`, every case). */
export function differences (print = false): { check (what: string, got: unknown, want: unknown, quiet?: boolean): void, readonly failures: number, readonly checks: number } {
  let failures = 0
  let checks = 0
  return {
    check (what, got, want, quiet = false) {
      checks++
      const same = JSON.stringify(got) === JSON.stringify(want)
      if (!same) failures++
      if (!quiet && (!same || print)) console.log(`${same ? 'same' : 'DIFF'} ${what}\n  nginx:    ${JSON.stringify(got)}\n  expected: ${JSON.stringify(want)}`)
    },
    get failures () { return failures },
    get checks () { return checks }
  }
}

type Differences = ReturnType<typeof differences>

/**
 * The run of a comparison script that starts its own upstreams: reads `[path/to/nginx] [--print]`,
 * makes a temp dir (`tmp/` for nginx's temp files) and a high port, lets `setup` start the
 * upstreams (their teardowns run at the end) and return the `http {}` body, runs nginx on it,
 * `check`s the cases, stops nginx by its pid, removes the dir, prints the count and exits 1 on any
 * difference.
 */
export async function compareWithNginx (name: string, setup: (t: Teardown, dir: string, port: number) => Promise<string>,
  check: (port: number, diff: Differences) => Promise<void>): Promise<never> {
  const args = process.argv.slice(2)
  const bin = args.find(a => !a.startsWith('--')) ?? 'nginx'
  const port = 18000 + Math.floor(Math.random() * 1000)
  const dir = mkdtempSync(path.join(os.tmpdir(), `proxyctl-nginx-${name}-`))
  mkdirSync(path.join(dir, 'tmp'))
  const teardowns: Array<() => unknown> = []
  const http = await setup({ teardown: (fn) => teardowns.push(fn) }, dir, port)
  writeFileSync(path.join(dir, 'nginx.conf'), nginxMainConf(dir, http))
  const nginx = spawn(bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'inherit' })
  const diff = differences(args.includes('--print'))
  try {
    await waitForPort(port)
    await check(port, diff)
  } finally {
    nginx.kill('SIGQUIT')
    for (const fn of teardowns) await fn()
    rmSync(dir, { recursive: true, force: true })
  }
  console.log(`${diff.checks} checks, ${diff.failures} differences against nginx`)
  process.exit(diff.failures === 0 ? 0 : 1)
}

export type Side = 'nginx' | 'proxyctl'

/**
 * One of the README's deliberate differences, by name: `apply` takes nginx's result for a case
 * to proxyctl's form where the difference shows, and leaves it alone elsewhere.
 */
export interface Deliberate { name: string, reason: string, apply: (result: unknown, caseName: string) => unknown }

/** The lines of `a` and `b` (as indented JSON) that differ, between their common head and tail. */
function changedLines (a: unknown, b: unknown): string {
  const x = JSON.stringify(a, null, 1).split('\n')
  const y = JSON.stringify(b, null, 1).split('\n')
  let head = 0
  while (head < x.length && head < y.length && x[head] === y[head]) head++
  let tail = 0
  while (tail < x.length - head && tail < y.length - head && x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail++
  const mid = (l: string[], mark: string): string[] => l.slice(head, l.length - tail).map((s) => `  ${mark} ${s}`)
  return [...mid(x, 'nginx:   '), ...mid(y, 'proxyctl:')].join('\n')
}

/**
 * A differential comparison: the same cases played against nginx and then against proxyctl on
 * the same ports, same files and same upstreams, and each case's whole result (helpers/
 * whole-answer.ts: answers, the close, what the upstream received) compared between the two.
 * Reads `[path/to/nginx] [--print] [--only=TEXT]` (`--only`: cases whose name holds TEXT).
 *
 *  - `setup` starts the upstreams (their teardowns run at the end) and returns nginx's `http {}`;
 *  - `play` sends every case to whichever of the two listens and returns `[name, result]` in order;
 *  - once nginx has stopped (by its pid), `proxyctl` starts proxyctl on the same ports;
 *  - `more` (optional) adds checks that are not answers (e.g. `nginx -t` against a table);
 *  - `deliberate` (optional): the README's deliberate differences, each applied by name to
 *    nginx's results where it changes something, and counted.
 *
 * Prints each difference (with `--print`, every case) and "N checks, M differences against
 * nginx"; exits 1 on any difference.
 */
export async function compareSideBySide (name: string, parts: {
  setup: (t: Teardown, dir: string, port: number) => Promise<string>
  proxyctl: (t: Teardown, dir: string, port: number) => Promise<void>
  play: (port: number, side: Side, only: (name: string) => boolean) => Promise<Array<[string, unknown]>>
  more?: (diff: Differences, dir: string, nginx: string) => Promise<void> | void
  main?: string
  deliberate?: Deliberate[]
}): Promise<never> {
  const args = process.argv.slice(2)
  const bin = args.find(a => !a.startsWith('--')) ?? 'nginx'
  const print = args.includes('--print')
  const onlyText = args.find(a => a.startsWith('--only='))?.slice(7)
  const only = (n: string): boolean => onlyText === undefined || n.includes(onlyText)
  const port = 18000 + Math.floor(Math.random() * 1000) * 4
  const dir = mkdtempSync(path.join(os.tmpdir(), `proxyctl-nginx-${name}-`))
  mkdirSync(path.join(dir, 'tmp'))
  const teardowns: Array<() => unknown> = []
  const t: Teardown = { teardown: (fn) => teardowns.push(fn) }
  const diff = differences(false)
  try {
    const http = await parts.setup(t, dir, port)
    writeFileSync(path.join(dir, 'nginx.conf'), nginxMainConf(dir, http, parts.main ?? ''))
    const nginx = spawn(bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'inherit' })
    const exited = new Promise((resolve) => nginx.once('exit', resolve))
    let fromNginx: Array<[string, unknown]>
    try {
      await Promise.race([waitForPort(port), exited.then(() => { throw new Error('nginx exited') })])
      fromNginx = await parts.play(port, 'nginx', only)
    } finally {
      if (nginx.exitCode === null && nginx.signalCode === null) nginx.kill('SIGTERM')
      await exited
    }
    await parts.proxyctl(t, dir, port)
    const fromProxyctl = new Map(await parts.play(port, 'proxyctl', only))
    const applied = new Map<string, number>()
    for (const [what, answered] of fromNginx) {
      let n = answered
      for (const d of parts.deliberate ?? []) {
        const next = d.apply(n, what)
        if (JSON.stringify(next) === JSON.stringify(n)) continue
        applied.set(d.name, (applied.get(d.name) ?? 0) + 1)
        if (print) console.log(`deliberate: ${d.name}: ${what}`)
        n = next
      }
      const p = fromProxyctl.has(what) ? fromProxyctl.get(what) : '(not played against proxyctl)'
      const same = JSON.stringify(n) === JSON.stringify(p)
      diff.check(what, n, p, true)
      if (!same) console.log(`DIFF ${what}\n${changedLines(n, p)}`)
      else if (print) console.log(`same ${what}\n${JSON.stringify(n, null, 1).split('\n').map((l) => `  ${l}`).join('\n')}`)
    }
    for (const d of parts.deliberate ?? []) console.log(`deliberate difference "${d.name}" taken out of nginx's answers ${applied.get(d.name) ?? 0} times: ${d.reason}`)
    await parts.more?.(diff, dir, bin)
  } finally {
    for (const fn of teardowns.reverse()) await fn()
    rmSync(dir, { recursive: true, force: true })
  }
  console.log(`${diff.checks} checks, ${diff.failures} differences against nginx`)
  process.exit(diff.failures === 0 ? 0 : 1)
}
