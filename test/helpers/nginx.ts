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
export function differences (print = false): { check (what: string, got: unknown, want: unknown): void, readonly failures: number, readonly checks: number } {
  let failures = 0
  let checks = 0
  return {
    check (what, got, want) {
      checks++
      const same = JSON.stringify(got) === JSON.stringify(want)
      if (!same) failures++
      if (!same || print) console.log(`${same ? 'same' : 'DIFF'} ${what}\n  nginx:    ${JSON.stringify(got)}\n  expected: ${JSON.stringify(want)}`)
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
