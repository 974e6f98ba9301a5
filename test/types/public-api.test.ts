/**
 * Runs the type tests of the public plugin API (public-api.tst.ts, with tstyche) against the built
 * packages, as part of the test command.
 */
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { ROOT } from '../helpers/proxy.js'

t.test('the public plugin API type-checks as docs/plugins.md describes it', async (t) => {
  const run = spawnSync('npx', ['--no-install', 'tstyche'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } })
  const out = `${run.stdout}${run.stderr}`
  t.equal(run.status, 0, `tstyche passes\n${run.status === 0 ? '' : out}`)
  t.match(out, /Test files:\s+1 passed/, 'the type test file ran')
})
