/**
 * What `proxyctl start` writes on stdout: the default access log beside the operational log, in
 * that log's form (JSON lines on a pipe; `--log-format pretty`: readable lines and combined).
 */
import { spawn } from 'node:child_process'
import { test } from 'tap'
import { CLI, configDir, runCli, startCli, writeConfig } from '../helpers/proxy.js'
import { waitFor } from '../helpers/lifecycle.js'

const CONFIG = `import { defineConfig, respond } from 'proxyctl'
export default defineConfig({ servers: [{ listen: '127.0.0.1:0', locations: { '/': respond(200, 'hi') } }] })
`

test('the default access log: JSON lines on stdout beside the JSON log', async (t) => {
  const dir = configDir(t)
  const file = writeConfig(dir, CONFIG)
  const cli = await startCli(t, ['-c', file])
  await (await fetch(`${cli.urls[0] ?? ''}/x?y=1`, { headers: { 'user-agent': 'cli-test' } })).text()
  await waitFor(() => cli.output().includes('"request":"GET /x?y=1 HTTP/1.1"'), 3000, 'the access line')
  const lines = cli.output().split('\n').filter((l) => l !== '')
  const access = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => o.request !== undefined && o.status !== undefined)
  const rows: Array<[string, unknown, unknown]> = [
    ['every stdout line is JSON (one stream, one format)', lines.every((l) => l.startsWith('{')), true],
    ['the access line has the status', access?.status, 200],
    ['and the user agent', access?.http_user_agent, 'cli-test']
  ]
  for (const [name, got, want] of rows) t.same(got, want, name)
  t.equal(await cli.stop(), 0, 'stops with 0')
})

test('--log-format pretty: readable lines, and the access log in nginx\'s combined', async (t) => {
  const dir = configDir(t)
  const file = writeConfig(dir, CONFIG)
  const child = spawn(process.execPath, [CLI, 'start', '-c', file, '--log-format', 'pretty'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  await waitFor(() => /INFO +listening on (\S+)/.test(out), 10_000, 'listening')
  const url = /INFO +listening on (\S+)/.exec(out)?.[1] ?? ''
  await (await fetch(`${url}/p`, { headers: { 'user-agent': 'cli-test' } })).text()
  await waitFor(() => out.includes('"GET /p HTTP/1.1"'), 3000, 'the access line')
  const rows: Array<[string, boolean]> = [
    ['an operational line: time, level, message, fields as key=value', /^\d\d:\d\d:\d\d\.\d{3} INFO +listening on \S+ address=\S+/m.test(out)],
    ['the access line is combined', /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET \/p HTTP\/1\.1" 200 2 "-" "cli-test"$/m.test(out)],
    ['no JSON line', !out.split('\n').some((l) => l.startsWith('{'))]
  ]
  for (const [name, ok] of rows) t.ok(ok, name)
  child.kill('SIGTERM')
  await new Promise((resolve) => child.once('close', resolve))
})

test('--log-format takes json or pretty', async (t) => {
  const r = await runCli(['start', '--log-format', 'xml'])
  t.equal(r.code, 1, 'exit 1')
  t.match(r.stderr, /--log-format must be json or pretty, got "xml"/, 'says why')
})
