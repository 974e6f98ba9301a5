// The packages as a user gets them: `pnpm pack` each, install the tarballs with npm into a
// fresh project outside the repo, then `npx proxyctl start` a TypeScript config.
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { freshProject, npmInstall, packProxyctl, tarList, tarRead } from '../helpers/pack.js'
import { request, startCli, targetOf } from '../helpers/proxy.js'

t.setTimeout(300_000)

t.test('npx proxyctl start works from packed tarballs in a fresh project', async (t) => {
  const tarballs = await packProxyctl(t)
  t.equal(tarballs.length, 3, 'three tarballs')

  for (const tgz of tarballs) {
    const list = await tarList(tgz)
    t.ok(list.some((f) => /^package\/dist\/index\.js$/.test(f)), `${path.basename(tgz)} ships dist/index.js`)
    t.ok(list.some((f) => /^package\/dist\/index\.d\.ts$/.test(f)), `${path.basename(tgz)} ships types`)
    t.notOk(list.some((f) => f.startsWith('package/src/')), `${path.basename(tgz)} ships no sources`)
    const manifest = JSON.parse(await tarRead(tgz, 'package/package.json')) as { dependencies?: Record<string, string> }
    t.notOk(Object.values(manifest.dependencies ?? {}).some((v) => v.startsWith('workspace:')), `${path.basename(tgz)} has no workspace: ranges`)
  }

  const project = freshProject(t)
  await npmInstall(project, tarballs)
  fs.writeFileSync(path.join(project, 'proxy.config.ts'), `import { defineConfig, respond } from 'proxyctl'
const who: string = 'packed'
export default defineConfig({ servers: [{ listen: '127.0.0.1:0', locations: { '/': respond(200, \`\${who} $uri\`) } }] })
`)
  const run = await startCli(t, [], { cwd: project, command: ['npx', '--no-install', 'proxyctl'] })
  const res = await request(targetOf(run.urls[0] as string), { path: '/hi' })
  t.equal(res.body, 'packed /hi', 'the installed CLI loads the TypeScript config and serves')
  // SIGTERM to the process group (what a terminal or service manager does): npm itself dies of
  // the signal, proxyctl drains and says so.
  await run.stop('SIGTERM')
  t.match(run.output(), /"msg":"stopped"/, 'proxyctl stopped gracefully')
  await t.rejects(request(targetOf(run.urls[0] as string), { path: '/' }), 'nothing listens any more')
})
