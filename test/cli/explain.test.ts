// `proxyctl explain`: the article's three configs through the CLI (--json), the location tables
// of test/routing/fixtures/location-cases.ts explained and sent to a real proxyctl (the location
// explain names is the one that answers), the --json shape, and its errors (exit 1 and 2).
import path from 'node:path'
import t from 'tap'
import { resolveConfig, respond, type LocationConfig } from '@proxyctl/core'
import { explainRequest } from '@proxyctl/core/internal'
import { cacheHome, configDir, request, runCli, startConfig, targetOf, urlOf, writeConfig } from '../helpers/proxy.js'
import { scenarios, type Tree } from '../routing/fixtures/location-cases.js'
import { articleCases, JSON_KEYS } from './fixtures/explain-cases.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
// hello.config.ts makes a self-signed certificate: kept in a folder of this test's.
cacheHome(t)

interface Json {
  listen: { address: string }
  server: { rule: string }
  steps: Array<{ step: string, test?: string, location?: string, matched?: boolean }>
  location: { chain: string[] } | null
  outcome: string
  variables: Record<string, string>
  handler: Record<string, unknown> | null
  redirects: Array<{ to: string, location: { chain: string[] } | null, handler: Record<string, unknown> | null }>
}

t.test('the article\'s three configs', async (t) => {
  for (const c of articleCases) {
    const run = await runCli(['explain', '-c', path.join(ROOT, 'examples', `${c.config}.config.ts`), '--json', ...c.args])
    t.equal(run.code, 0, `${c.rule}: exit 0 ${run.stderr}`)
    const x = JSON.parse(run.stdout) as Json
    const e = c.expect
    if (e.listen !== undefined) t.equal(x.listen.address, e.listen, `${c.rule}: listen`)
    if (e.serverRule !== undefined) t.equal(x.server.rule, e.serverRule, `${c.rule}: server rule`)
    if (e.location !== undefined) t.equal(x.location === null ? null : x.location.chain.join(' > '), e.location, `${c.rule}: location`)
    if (e.outcome !== undefined) t.equal(x.outcome, e.outcome, `${c.rule}: outcome`)
    if (e.steps !== undefined) {
      t.same(x.steps.filter((s) => s.step === 'location').map((s) => `${s.test} ${s.location} ${s.matched}`), e.steps, `${c.rule}: locations considered`)
    }
    if (e.variables !== undefined) t.match(x.variables, e.variables, `${c.rule}: variables`)
    if (e.handler !== undefined) t.match(x.handler, e.handler, `${c.rule}: handler`)
    if (e.upstreamRequest !== undefined) t.same(x.handler?.upstreamRequest, e.upstreamRequest, `${c.rule}: the upstream request, whole`)
    if (e.redirects !== undefined) {
      t.same(x.redirects.map((r) => ({ to: r.to, location: r.location?.chain.join(' > ') ?? null, kind: r.handler?.kind ?? null })), e.redirects, `${c.rule}: internal redirects`)
    }
    if (e.upstreamRequestAfterRedirect !== undefined) {
      t.same(x.redirects.at(-1)?.handler?.upstreamRequest, e.upstreamRequestAfterRedirect, `${c.rule}: the upstream request after the redirect, whole`)
    }
  }
})

// As test/routing/location-through-server.test.ts: each location answers its index in `labels`.
function toLocations (tree: Tree, vars: string[], labels: string[], parent = ''): Record<string, LocationConfig> {
  const out: Record<string, LocationConfig> = {}
  for (const [key, sub] of Object.entries(tree)) {
    const label = parent === '' ? key : `${parent} > ${key}`
    labels.push(label)
    out[key] = { handler: respond(200, `${labels.length - 1}|${vars.map((v) => `${v}=$${v}`).join('|')}`), locations: toLocations(sub, vars, labels, label) }
  }
  return out
}

for (const scenario of scenarios) {
  t.test(`explain names the location a running proxyctl answers from: ${scenario.name}`, async (t) => {
    const labels: string[] = []
    const config = { servers: [{ listen: '127.0.0.1:0', locations: toLocations(scenario.locations, scenario.vars, labels) }] }
    const proxy = await startConfig(t, config)
    const explained = resolveConfig(config)
    const target = targetOf(urlOf(proxy))
    for (const c of scenario.cases) {
      const res = await request(target, { path: c.uri })
      const answered = res.status === 404 ? null : labels[Number(res.body.split('|')[0])]
      const x = await explainRequest(explained, { url: `http://127.0.0.1:${target.port ?? 0}${c.uri}`, listen: '127.0.0.1:0' })
      const named = x.location === null ? null : x.location.chain.join(' > ')
      t.equal(named, answered, `${c.rule} (${c.uri}): explain names ${String(named)}, the server answered from ${String(answered)}`)
      for (const [name, value] of Object.entries(c.captures ?? {})) {
        t.equal(x.variables[name] ?? '', value, `${c.rule}: $${name} is "${value}" in both (a capture not in force is empty)`)
        t.ok(res.body.split('|').includes(`${name}=${value}`), `${c.rule}: the server's $${name} is "${value}"`)
      }
    }
  })
}

t.test('--json: the documented top-level shape', async (t) => {
  const run = await runCli(['explain', '-c', path.join(ROOT, 'examples', 'hello.config.ts'), '--json', 'POST', 'http://127.0.0.1:8080/x'])
  t.equal(run.code, 0)
  const x = JSON.parse(run.stdout) as Record<string, unknown>
  t.same(Object.keys(x), JSON_KEYS, 'keys, in order')
  t.match(x, {
    request: { method: 'POST', url: 'http://127.0.0.1:8080/x', target: '/x', headers: [['Host', '127.0.0.1:8080']], client: '127.0.0.1' },
    listen: { address: '127.0.0.1:8080', why: String },
    server: { keyPath: 'servers[0]', names: ['localhost'], host: '127.0.0.1', rule: 'default', name: null },
    steps: [{ step: 'select', uri: '/x' }, { step: 'location', test: 'prefix', location: '/', keyPath: 'servers[0].locations["/"]', matched: true }],
    location: { key: '/', keyPath: 'servers[0].locations["/"]', chain: ['/'] },
    outcome: 'location',
    answer: null,
    variables: { uri: '/x', args: '', request_uri: '/x' },
    plugins: [],
    handler: { description: String, keyPath: 'servers[0].locations["/"]', kind: 'respond', status: 200 },
    redirects: []
  })
})

t.test('errors: a bad config exits 1 naming file and key path; a request explain cannot describe exits 2', async (t) => {
  const dir = configDir(t)
  const file = writeConfig(dir, "import { defineConfig, respond } from 'proxyctl'\nexport default defineConfig({ servers: [{ listen: '127.0.0.1:0', locations: { '/': respond(200, '$nope') } }] })\n")
  const bad = await runCli(['explain', '-c', file, 'http://127.0.0.1/'])
  t.equal(bad.code, 1, 'bad config: exit 1')
  t.match(bad.stderr, `proxyctl: ${file}: servers[0].locations["/"].body: unknown variable "$nope"`, 'file and key path, as check prints them')
  t.notMatch(bad.stderr, /\n\s+at /, 'no stack')

  const hello = path.join(ROOT, 'examples', 'hello.config.ts')
  const rows: Array<[string, string[], RegExp]> = [
    ['not a URL', ['explain', '-c', hello, 'example.com/x'], /proxyctl: explain: invalid URL "example\.com\/x": expected http:\/\/HOST\[:PORT\]\/PATH/],
    ['a space in the URL', ['explain', '-c', hello, 'http://127.0.0.1:8080/a b'], /spaces and control characters must be percent-encoded/],
    ['no listen address on the port', ['explain', '-c', hello, 'http://127.0.0.1:9/'], /no listen address on port 9 \(the config has 127\.0\.0\.1:8080, \[::1\]:8080, 127\.0\.0\.1:8443, \[::1\]:8443\)/],
    ['a header without a colon', ['explain', '-c', hello, '-H', 'Nope', 'http://127.0.0.1:8080/'], /invalid header "Nope": expected 'Name: value'/],
    ['a bad method', ['explain', '-c', hello, 'G T', 'http://127.0.0.1:8080/'], /invalid method "G T"/],
    ['an unknown --listen', ['explain', '-c', hello, '--listen', '10.0.0.1:80', 'http://127.0.0.1:8080/'], /no listen address "10\.0\.0\.1:80"/],
    ['no URL', ['explain', '-c', hello], /usage: proxyctl explain/]
  ]
  for (const [rule, args, stderr] of rows) {
    const run = await runCli(args)
    t.equal(run.code, 2, `${rule}: exit 2`)
    t.match(run.stderr, stderr, `${rule}: says why`)
    t.equal(run.stdout, '', `${rule}: nothing on stdout`)
  }
})
