// Where a TypeScript config's imports come from, and where its temporary bundle goes: not into
// the config's folder, and `proxyctl` from the folder's own install, else the running CLI's.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { configDir, request, ROOT, runCli, startCli, targetOf, tmpDir, writeConfig, type RunAs } from '../helpers/proxy.js'

t.test('a .ts config in a read-only folder loads and serves (its default pid file a warning); its local imports keep their import.meta', async (t) => {
  const dir = tmpDir(t, 'proxyctl-readonly-')
  const lib = path.join(dir, 'lib')
  fs.mkdirSync(lib)
  fs.writeFileSync(path.join(lib, 'greeting.txt'), 'read beside lib/greeting.ts')
  fs.writeFileSync(path.join(lib, 'greeting.ts'), `import fs from 'node:fs'
export const greeting: string = fs.readFileSync(new URL('./greeting.txt', import.meta.url), 'utf8')
export const where: string = import.meta.dirname
`)
  writeConfig(dir, `import { defineConfig, respond } from 'proxyctl'
import { greeting, where } from './lib/greeting.js'
export default defineConfig({ servers: [{ listen: '127.0.0.1:0', locations: {
  '/greeting': respond(200, greeting),
  '/where': respond(200, where + ' ' + import.meta.filename)
} }] })
`)
  const before = fs.readdirSync(dir)
  // Mode 0555 does not stop root: as root, the CLI runs as nobody, for whom it does.
  const user: RunAs | undefined = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined
  for (const d of [lib, dir]) fs.chmodSync(d, 0o555)
  try {
    const probe = spawnSync(process.execPath, ['-e', 'require("fs").writeFileSync("probe", "")'], { cwd: dir, ...user })
    t.not(probe.status, 0, 'precondition: the CLI\'s user cannot write into the folder')

    const check = await runCli(['check'], { cwd: dir, user })
    t.equal(check.code, 0, check.stderr)
    t.match(check.stdout, /configuration is valid/)

    const run = await startCli(t, [], { cwd: dir, user })
    const target = targetOf(run.urls[0] as string)
    t.equal((await request(target, { path: '/greeting' })).body, 'read beside lib/greeting.ts', 'import.meta.url is the imported file\'s')
    t.equal((await request(target, { path: '/where' })).body, `${lib} ${path.join(dir, 'proxy.config.ts')}`, 'import.meta.dirname and .filename are each file\'s')
    t.match(run.output(), /"code":"PROXYCTL_CONFIG_WARNING".*pid file .*proxyctl\.pid not written \(EACCES\)/, 'the default pid file cannot be written there: one warning, and it serves')
    t.equal(await run.stop('SIGTERM'), 0)
    t.same(fs.readdirSync(dir), before, 'the folder holds what it held')
  } finally {
    for (const d of [dir, lib]) fs.chmodSync(d, 0o755)
  }
})

t.test('a config imports proxyctl from its own folder\'s install, else the running CLI\'s, with one core either way', async (t) => {
  // registerVariable goes through the config's core; the CLI's core compiles the template, so
  // $proxyctl_copy resolves only if the two are one module.
  const source = `import * as proxyctl from 'proxyctl'
proxyctl.registerVariable('proxyctl_copy', () => (proxyctl as { copy?: string }).copy ?? "the CLI's own")
export default proxyctl.defineConfig({ servers: [{ listen: '127.0.0.1:0', locations: { '/': proxyctl.respond(200, '$proxyctl_copy') } }] })
`
  // A project's own proxyctl: a package in its node_modules that re-exports the built one and says so.
  const ownInstall = (dir: string): void => {
    const pkg = path.join(dir, 'node_modules', 'proxyctl')
    fs.mkdirSync(pkg, { recursive: true })
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'proxyctl', type: 'module', exports: './index.js' }))
    fs.writeFileSync(path.join(pkg, 'index.js'), `export * from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'packages', 'cli', 'dist', 'index.js')).href)}
export const copy = "the project's own"
`)
  }
  const rows: Array<{ rule: string, dir: () => string, body: string }> = [
    { rule: 'a folder with nothing installed gets the running CLI\'s proxyctl', dir: () => tmpDir(t, 'proxyctl-bare-'), body: 'the CLI\'s own' },
    { rule: 'a project with proxyctl installed gets its own', dir: () => { const d = tmpDir(t, 'proxyctl-project-'); ownInstall(d); return d }, body: 'the project\'s own' },
    { rule: 'a folder in the workspace gets the workspace\'s, through node_modules', dir: () => configDir(t), body: 'the CLI\'s own' }
  ]
  for (const row of rows) {
    const file = writeConfig(row.dir(), source)
    const run = await startCli(t, ['--config', file])
    const res = await request(targetOf(run.urls[0] as string), { path: '/' })
    t.equal(res.body, row.body, row.rule)
    t.equal(await run.stop('SIGTERM'), 0, `${row.rule}: stops`)
  }
})

t.test('only proxyctl\'s own packages fall back to the CLI\'s: another missing package is reported with its line', async (t) => {
  const dir = tmpDir(t, 'proxyctl-missing-')
  const file = writeConfig(dir, `import { defineConfig, respond } from 'proxyctl'
import pad from 'left-pad'
export default defineConfig({ servers: [{ listen: '127.0.0.1:0', locations: { '/': respond(200, pad('x', 3)) } }] })
`)
  const run = await runCli(['check', '--config', file])
  t.equal(run.code, 1)
  t.match(run.stderr, `proxyctl: ${file}: cannot load config: 2:16: Could not resolve "left-pad"`)
  t.notMatch(run.stderr, /\n\s+at /, 'no stack')
})
