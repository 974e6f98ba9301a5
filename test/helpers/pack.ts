/**
 * The packages as a user gets them: tarballs from `pnpm pack`, installed with npm into projects
 * outside the repo. Every command is bounded in time and fails with its output.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { ROOT, tmpDir } from './proxy.js'

interface Teardown { teardown (fn: () => unknown): void }

/** Runs `cmd ARGS` in `cwd` to completion within `timeoutMs`; resolves with its stdout, rejects with all it printed. */
export function run (cmd: string, args: string[], options: { cwd: string, timeoutMs?: number }): Promise<string> {
  const timeout = options.timeoutMs ?? 120_000
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: options.cwd, timeout, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) { resolve(stdout); return }
      const why = err.killed ? `did not finish in ${timeout / 1000} s` : `failed (${err.code ?? err.signal})`
      reject(new Error(`${cmd} ${args.join(' ')} in ${options.cwd} ${why}\n${stdout}${stderr}`))
    })
  })
}

/** `pnpm pack`s core, plugins and cli (built beforehand) into a temporary folder; the paths of the three tarballs. */
export async function packProxyctl (t: Teardown): Promise<string[]> {
  const packs = tmpDir(t, 'proxyctl-packs-')
  for (const pkg of ['core', 'plugins', 'cli']) {
    await run('pnpm', ['pack', '--pack-destination', packs], { cwd: path.join(ROOT, 'packages', pkg), timeoutMs: 60_000 })
  }
  return fs.readdirSync(packs).filter((f) => f.endsWith('.tgz')).sort().map((f) => path.join(packs, f))
}

/**
 * `npm install SPECS` (tarball paths or names) in `dir`, quietly; what npm's cache holds is taken
 * from there without asking the registry again (a few hundred packages: 25 s against 65 s).
 */
export function npmInstall (dir: string, specs: string[], extra: string[] = []): Promise<string> {
  return run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--prefer-offline', ...extra, ...specs], { cwd: dir, timeoutMs: 180_000 })
}

/** A fresh ES module project outside the repo (no node_modules above it), removed when the test ends. */
export function freshProject (t: Teardown): string {
  const dir = tmpDir(t, 'proxyctl-user-')
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'user-project', private: true, type: 'module' }))
  return dir
}

/** The names of the files in a tarball (`package/...`). */
export async function tarList (tgz: string): Promise<string[]> {
  return (await run('tar', ['-tzf', tgz], { cwd: path.dirname(tgz) })).split('\n').filter(Boolean)
}

/** One file of a tarball, as text. */
export function tarRead (tgz: string, file: string): Promise<string> {
  return run('tar', ['-xzOf', tgz, file], { cwd: path.dirname(tgz) })
}
