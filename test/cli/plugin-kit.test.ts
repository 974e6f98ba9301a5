// A plugin author's kit, end to end outside the repo: `proxyctl init --plugin NAME` writes a
// package; with the packed proxyctl it installs, builds and passes its own test; packed with npm, it
// installs beside proxyctl into a fresh project whose config puts it on a location, and serves.
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import t from 'tap'
import { freshProject, npmInstall, packProxyctl, run, tarList, tarRead } from '../helpers/pack.js'
import { request, runCli, startCli, targetOf, tmpDir } from '../helpers/proxy.js'

t.setTimeout(300_000)

const NAME = 'proxyctl-plugin-example'
const KIT = ['package.json', 'tsconfig.json', 'tsconfig.build.json', '.gitignore', 'src/index.ts', 'test/plugin.test.ts', 'README.md']

t.test('init --plugin writes a package that builds, passes its test, packs, installs and serves', async (t) => {
  const home = tmpDir(t, 'proxyctl-author-')
  const init = await runCli(['init', '--plugin', NAME], { cwd: home })
  t.equal(init.code, 0, init.stderr)
  const dir = path.join(home, NAME)
  t.same([...init.stdout.matchAll(/^wrote (.*)$/gm)].map((m) => m[1]), KIT.map((f) => path.join(dir, f)), 'prints each file it wrote')
  const written = fs.readFileSync(path.join(dir, 'package.json'), 'utf8')
  const pkg = JSON.parse(written) as Record<string, any>
  t.same([pkg.name, pkg.version, pkg.type, pkg.files], [NAME, '0.1.0', 'module', ['dist']])
  t.match(pkg.peerDependencies, { proxyctl: /^\^\d+\.\d+\.\d+$/ }, 'proxyctl is a peer dependency')
  t.match(pkg.dependencies, { 'fastify-plugin': /^\^5\./ }, 'fastify-plugin of the Fastify 5 line')
  t.notMatch(fs.readFileSync(path.join(dir, 'src/index.ts'), 'utf8') + fs.readFileSync(path.join(dir, 'README.md'), 'utf8'), /__[A-Z_]+__/, 'no placeholder is left')

  // The author's `npm install`, with proxyctl from its tarballs (--no-save keeps package.json as written).
  const tarballs = await packProxyctl(t)
  await npmInstall(dir, tarballs, ['--no-save'])
  await run('npm', ['run', 'build'], { cwd: dir })
  t.ok(fs.existsSync(path.join(dir, 'dist', 'index.d.ts')), 'build writes dist/index.js and its types')
  const own = await run('npm', ['test'], { cwd: dir, timeoutMs: 120_000 })
  // Under this tap run the inner tap prints no summary; its exit code 0 (run resolved) and lines say it.
  t.match(own, /^\s*ok 4 - nor to the client$/m, 'the package\'s own test (tsc, then tap) passes')
  t.notMatch(own, /not ok/)

  // --ignore-scripts: prepack would build again what was just built.
  const packed = JSON.parse(await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', path.dirname(tarballs[0] as string)], { cwd: dir })) as Array<{ filename: string }>
  const tgz = path.join(path.dirname(tarballs[0] as string), (packed[0] as { filename: string }).filename)
  t.same((await tarList(tgz)).sort(), ['package/README.md', 'package/dist/index.d.ts', 'package/dist/index.js', 'package/package.json'], 'the tarball holds dist, README and package.json')
  t.equal(await tarRead(tgz, 'package/package.json'), written, 'its package.json is the one init wrote')

  // A user's project: proxyctl and the plugin from their tarballs, the plugin on one location.
  const upstream = http.createServer((req, res) => { res.end(JSON.stringify(req.headers)) })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.closeAllConnections(); upstream.close() })
  const app = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const project = freshProject(t)
  await npmInstall(project, [...tarballs, tgz])
  fs.writeFileSync(path.join(project, 'proxy.config.ts'), `import { defineConfig, proxy } from 'proxyctl'
import examplePlugin, { type ExampleOptions } from '${NAME}'
export default defineConfig({
  servers: [{
    listen: '127.0.0.1:0',
    locations: {
      '/api/': { plugins: [[examplePlugin, { requestHeader: 'x-matched' } satisfies ExampleOptions]], handler: proxy('${app}') },
      '/': proxy('${app}')
    }
  }]
})
`)
  // The published types type-check the user's config, typed options included.
  fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true } }))
  await t.resolves(run(process.execPath, [path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { cwd: project }), 'tsc accepts the config')

  const cli = await startCli(t, [], { cwd: project, command: ['npx', '--no-install', 'proxyctl'] })
  const target = targetOf(cli.urls[0] as string)
  const api = await request(target, { path: '/api/users' })
  t.equal((JSON.parse(api.body) as Record<string, string>)['x-matched'], '/api/', 'the upstream got the plugin\'s request header, named by the option')
  t.match(api.headers['x-upstream-time'], /^\d+\.\d$/, 'the client got the plugin\'s response header')
  const other = await request(target, { path: '/other' })
  t.notOk('x-matched' in (JSON.parse(other.body) as Record<string, string>), 'a sibling location runs no plugin')
  t.notOk('x-upstream-time' in other.headers)
  await cli.stop('SIGTERM')
  t.match(cli.output(), /"msg":"stopped"/, 'proxyctl stopped gracefully')
})

t.test('init --plugin refuses a bad name or a folder in use, writing nothing', async (t) => {
  const rows: Array<{ name: string, error: RegExp }> = [
    { name: 'Proxyctl-Plugin-Foo', error: /capital letters/ },
    { name: 'my plugin', error: /lower case letters, digits/ },
    { name: '.hidden', error: /starts with \. or _/ },
    { name: '_private', error: /starts with \. or _/ },
    { name: 'foo/bar', error: /lower case letters, digits/ },
    { name: '@scope', error: /lower case letters, digits/ },
    { name: '@scope/', error: /lower case letters, digits/ },
    { name: '@/foo', error: /lower case letters, digits/ },
    { name: 'http', error: /taken by Node or npm/ },
    { name: 'node_modules', error: /taken by Node or npm/ },
    { name: `proxyctl-plugin-${'x'.repeat(200)}`, error: /longer than 214/ },
    { name: '', error: /is empty/ }
  ]
  for (const row of rows) {
    const dir = tmpDir(t, 'proxyctl-badname-')
    const res = await runCli(['init', '--plugin', row.name], { cwd: dir })
    t.equal(res.code, 1, `${JSON.stringify(row.name)}: exit 1`)
    t.match(res.stderr, new RegExp(`is not a valid npm package name: .*${row.error.source}`), `${JSON.stringify(row.name)}: says why`)
    t.same(fs.readdirSync(dir), [], `${JSON.stringify(row.name)}: nothing written`)
  }

  const dir = tmpDir(t, 'proxyctl-busy-')
  fs.mkdirSync(path.join(dir, 'proxyctl-plugin-busy'))
  fs.writeFileSync(path.join(dir, 'proxyctl-plugin-busy', 'notes.txt'), 'mine\n')
  fs.writeFileSync(path.join(dir, 'proxyctl-plugin-file'), 'a file\n')
  for (const name of ['proxyctl-plugin-busy', 'proxyctl-plugin-file', '@acme/proxyctl-plugin-busy']) {
    const res = await runCli(['init', '--plugin', name], { cwd: dir })
    t.equal(res.code, 1, `${name}: exit 1`)
    t.match(res.stderr, /already exists and is not an empty folder/, `${name}: says why`)
  }
  t.same(fs.readdirSync(path.join(dir, 'proxyctl-plugin-busy')), ['notes.txt'], 'the folder in use is untouched')
})

t.test('init --plugin takes a scoped name, writing into the unscoped folder (an empty one is fine)', async (t) => {
  const dir = tmpDir(t, 'proxyctl-scoped-')
  fs.mkdirSync(path.join(dir, 'auth-check'))
  const res = await runCli(['init', '--plugin', '@acme/auth-check'], { cwd: dir })
  t.equal(res.code, 0, res.stderr)
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'auth-check', 'package.json'), 'utf8')) as { name: string }
  t.equal(pkg.name, '@acme/auth-check')
  const src = fs.readFileSync(path.join(dir, 'auth-check', 'src', 'index.ts'), 'utf8')
  t.match(src, "export interface AuthCheckOptions {")
  t.match(src, "fp(plugin, { name: '@acme/auth-check', fastify: '5.x' })")
  t.match(fs.readFileSync(path.join(dir, 'auth-check', 'test', 'plugin.test.ts'), 'utf8'), "import authCheckPlugin from '../src/index.js'")
  t.match(res.stdout, /^next: cd auth-check && npm install && npm test$/m)
})
