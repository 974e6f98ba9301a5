// A newcomer's first minute: `proxyctl init`, `check`, `start` in an empty folder with nothing
// installed; the tsconfig.json and package.json init adds so an editor type-checks the config.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { freePort } from '../helpers/failure.js'
import { cacheHome, configDir, request, ROOT, runCli, startCli, targetOf, tmpDir } from '../helpers/proxy.js'
import { tlsGet } from '../helpers/tls.js'

/** Every node_modules folder Node or esbuild could resolve a package from, for `dir`. */
function nodeModulesFrom (dir: string): string[] {
  const found: string[] = []
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'node_modules'))) found.push(path.join(d, 'node_modules'))
    if (path.dirname(d) === d) return found
  }
}

const cache = cacheHome(t)

t.test('in an empty folder with no node_modules above it, init then check then start serve the starter', async (t) => {
  const dir = tmpDir(t, 'proxyctl-newcomer-')
  t.same(nodeModulesFrom(dir), [], 'precondition: nothing installed in the folder or above it')

  const init = await runCli(['init'], { cwd: dir })
  t.equal(init.code, 0, init.stderr)
  // The starter listens on 8080 and 8443 (IPv4 and IPv6); free ports keep the test off the machine's ports.
  const file = path.join(dir, 'proxy.config.ts')
  const starter = fs.readFileSync(file, 'utf8')
  t.match(starter, "{ address: '127.0.0.1:8443', https, http2: true }", 'the starter serves https with HTTP/2 on 8443')
  // Two addresses (one port 0 would be one address, made TLS by its https entry).
  const onFreePort = starter.replace(/listen: \[.*\]/, `listen: ['127.0.0.1:${await freePort()}', { address: '127.0.0.1:${await freePort()}', https, http2: true }]`)
  t.not(onFreePort, starter, 'the starter\'s listen line was rewritten')
  fs.writeFileSync(file, onFreePort)

  const check = await runCli(['check'], { cwd: dir })
  t.equal(check.code, 0, check.stderr)
  t.match(check.stdout, /location = \/health/)
  t.match(check.stdout, /listen 127\.0\.0\.1:\d+ https/)
  t.match(check.stdout, /configuration is valid/)

  const run = await startCli(t, [], { cwd: dir, expectListeners: 2 })
  const target = targetOf(run.urls.find((u) => u.startsWith('http:')) as string)
  t.same(await request(target, { path: '/health' }).then((r) => [r.status, r.body]), [200, 'ok\n'])
  t.equal((await request(target, { path: '/' })).body, 'hello from proxyctl: GET / from 127.0.0.1 over http\n')
  const httpsPort = Number(new URL(run.urls.find((u) => u.startsWith('https:')) as string).port)
  const table: Array<[string, string | false, string]> = [
    ['h2', 'h2', 'https with HTTP/2 by ALPN'],
    ['http/1.1', 'http/1.1', 'https with HTTP/1.1 for a client that offers only it']
  ]
  for (const [offer, alpn, rule] of table) {
    t.same(await tlsGet(httpsPort, offer), { alpn, cn: 'localhost', san: 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1', status: 200, body: 'hello from proxyctl: GET / from 127.0.0.1 over https\n' }, rule)
  }
  t.equal(await run.stop('SIGTERM'), 0)
  t.same(fs.readdirSync(dir).sort(), ['package.json', 'proxy.config.ts', 'tsconfig.json'], 'nothing else was written into the folder')
  t.same(fs.readdirSync(path.join(cache, 'proxyctl')), ['self-signed-localhost_127.0.0.1_--1.pem'], 'the certificate is kept in the cache folder')
})

t.test('init writes tsconfig.json and package.json only when absent, never overwrites them', async (t) => {
  const mine = { 'package.json': '{ "name": "mine" }\n', 'tsconfig.json': '{ "compilerOptions": {} }\n' }
  const rows: Array<{ rule: string, args: string[], existing: Record<string, string>, wrote: string[] }> = [
    { rule: 'an empty folder gets all three', args: [], existing: {}, wrote: ['proxy.config.ts', 'tsconfig.json', 'package.json'] },
    { rule: 'an existing package.json is kept', args: [], existing: { 'package.json': mine['package.json'] }, wrote: ['proxy.config.ts', 'tsconfig.json'] },
    { rule: 'an existing tsconfig.json is kept', args: [], existing: { 'tsconfig.json': mine['tsconfig.json'] }, wrote: ['proxy.config.ts', 'package.json'] },
    { rule: '--force rewrites the config only', args: ['--force'], existing: { ...mine, 'proxy.config.ts': '// mine\n' }, wrote: ['proxy.config.ts'] }
  ]
  for (const row of rows) {
    const dir = tmpDir(t, 'proxyctl-init-')
    for (const [name, text] of Object.entries(row.existing)) fs.writeFileSync(path.join(dir, name), text)
    const run = await runCli(['init', ...row.args], { cwd: dir })
    t.equal(run.code, 0, `${row.rule}: exit 0 ${run.stderr}`)
    const printed = [...run.stdout.matchAll(/^wrote (.*)$/gm)].map((m) => m[1])
    t.same(printed, row.wrote.map((name) => path.join(dir, name)), `${row.rule}: prints each file it wrote`)
    for (const [name, text] of Object.entries(row.existing)) {
      if (!row.wrote.includes(name)) t.equal(fs.readFileSync(path.join(dir, name), 'utf8'), text, `${row.rule}: ${name} untouched`)
    }
    if (row.wrote.includes('package.json')) {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { type?: string, dependencies?: Record<string, string> }
      t.equal(pkg.type, 'module', `${row.rule}: package.json makes the folder ES modules`)
      t.match(pkg.dependencies?.proxyctl, /^\^\d+\.\d+\.\d+/, `${row.rule}: package.json lists proxyctl`)
    }
    if (row.wrote.includes('tsconfig.json')) {
      const { compilerOptions: o } = JSON.parse(fs.readFileSync(path.join(dir, 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> }
      t.same([o.module, o.moduleResolution, o.strict, o.noEmit], ['NodeNext', 'NodeNext', true, true], `${row.rule}: tsconfig.json is strict NodeNext without output`)
    }
  }
})

t.test('with proxyctl installed, tsc type-checks the starter through the tsconfig.json init wrote', async (t) => {
  // Inside the repo `proxyctl` resolves through the workspace's node_modules, as after npm install.
  const dir = configDir(t)
  t.equal((await runCli(['init'], { cwd: dir })).code, 0)
  const tsc = (): Promise<{ code: number, out: string }> => promisify(execFile)(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir])
    .then((r) => ({ code: 0, out: r.stdout }), (e: { code: number, stdout: string }) => ({ code: e.code, out: e.stdout }))
  const clean = await tsc()
  t.equal(clean.code, 0, `the starter type-checks: ${clean.out}`)
  const file = path.join(dir, 'proxy.config.ts')
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('serverName:', 'serverNme:'))
  const typo = await tsc()
  t.not(typo.code, 0, 'a misspelt key fails')
  t.match(typo.out, /'serverNme' does not exist in type 'ServerConfig'/)
})
