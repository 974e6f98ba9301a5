/**
 * The side-by-side comparisons with Debian's nginx (test/<area>/fixtures/*nginx-compare.ts), run
 * as part of the suite, one test file per area (test/nginx/<area>.test.ts): each script sends its
 * cases to nginx and to proxyctl and exits 0 only with "0 differences against nginx". An area's
 * scripts run one at a time (each starts its own nginx on a random port).
 *
 * Without nginx on the PATH an area is skipped with the reason, except where
 * PROXYCTL_REQUIRE_NGINX=1 (.ci/run sets it, after installing nginx): then it fails.
 */
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type { Test } from 'tap'

const ROOT = path.resolve(import.meta.dirname, '..', '..')

/** Every comparison script, for the test that checks each area has its file. */
export const allScripts = (): string[] => fs.readdirSync(path.join(ROOT, 'test'), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) => scriptsOf(d.name))
  .sort()

function scriptsOf (area: string): string[] {
  const dir = path.join(ROOT, 'test', area, 'fixtures')
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('nginx-compare.ts')).sort().map((f) => path.join(dir, f)) : []
}

const hasNginx = spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status === 0
const required = process.env.PROXYCTL_REQUIRE_NGINX === '1'
const skip = hasNginx || required ? false : 'nginx is not installed (apt-get install nginx-light libnginx-mod-http-brotli-static)'

/** Runs one script to its end (at most 5 minutes); resolves with its exit code and output. */
async function run (script: string): Promise<{ code: number | null, out: string }> {
  return await new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000)
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, out }) })
  })
}

/** The comparisons of test/<area>/fixtures, as one test. */
export function compareArea (t: Test, area: string): void {
  const scripts = scriptsOf(area)
  t.test(`test/${area}: every nginx comparison script reports 0 differences`, { skip, timeout: 600_000 }, async (t) => {
    t.ok(scripts.length > 0, `test/${area}/fixtures has comparison scripts (${scripts.length})`)
    for (const script of scripts) {
      const name = path.relative(ROOT, script)
      const { code, out } = await run(script)
      const verdict = /(\d+) (?:checks|cases checked against nginx), (\d+) (?:differences|differ)/.exec(out)
      t.equal(code, 0, `${name}: exits 0${code === 0 ? '' : `\n${out.slice(-3000)}`}`)
      t.ok(verdict !== null && Number(verdict[1]) > 0 && verdict[2] === '0', `${name}: ${verdict?.[0] ?? 'no verdict line'}`)
    }
  })
}
