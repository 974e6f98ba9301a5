// The cache's config errors: `proxyctl check` names the file and the key path, exits 1, prints no stack.
import t from 'tap'
import { configDir, runCli, writeConfig } from '../helpers/proxy.js'

const head = "import { defineConfig, proxy } from 'proxyctl'\n"
const conf = (caches: string, cache: string): string =>
  `${head}export default defineConfig({ caches: ${caches}, servers: [{ listen: '127.0.0.1:0', locations: { '/': proxy('http://127.0.0.1:9', { cache: ${cache} } as never) } }] })\n`
const main = "{ main: { store: 'memory' } }"

const cases: Array<{ rule: string, source: string, expect: RegExp }> = [
  { rule: 'a store that is none of memory, a folder, a Redis', source: conf("{ main: { store: 'disk' as never } }", "{ zone: 'main' }"), expect: /: caches\.main\.store: expected 'memory', \{ path: '\.\/cache' \} or \{ redis: 'redis:\/\/HOST:PORT' \}$/m },
  { rule: 'a maxSize nginx would not read', source: conf("{ main: { maxSize: '1x' as never } }", "{ zone: 'main' }"), expect: /: caches\.main\.maxSize: expected a size of at least 1k: '256m'$/m },
  { rule: 'a Redis URL of another scheme', source: conf("{ main: { store: { redis: 'http://x' } } }", "{ zone: 'main' }"), expect: /: caches\.main\.store\.redis: expected 'redis:\/\/HOST:PORT\[\/DB\]'/m },
  { rule: 'a location naming a cache that is not defined', source: conf(main, "{ zone: 'mian' }"), expect: /: servers\[0\]\.locations\["\/"\]\.cache\.zone: unknown cache "mian" \(caches\)$/m },
  { rule: 'an unknown key in cache', source: conf(main, "{ zone: 'main', vaild: 1000 }"), expect: /: servers\[0\]\.locations\["\/"\]\.cache\.vaild: unknown key$/m },
  { rule: 'valid keyed by something that is not a status', source: conf(main, "{ zone: 'main', valid: { ok: 1000 } }"), expect: /: servers\[0\]\.locations\["\/"\]\.cache\.valid\["ok"\]: keys are status codes/m },
  { rule: 'minUses 0', source: conf(main, "{ zone: 'main', minUses: 0 }"), expect: /: servers\[0\]\.locations\["\/"\]\.cache\.minUses: expected an integer >= 1$/m },
  { rule: 'a useStale case nginx does not have', source: conf(main, "{ zone: 'main', useStale: ['http_418'] }"), expect: /: servers\[0\]\.locations\["\/"\]\.cache\.useStale: "http_418" is not one of /m },
  { rule: 'a key with an unknown variable', source: conf(main, "{ zone: 'main', key: '$nope' }"), expect: /: servers\[0\]\.locations\["\/"\]\.cache\.key: unknown variable "\$nope"$/m }
]

t.test('proxyctl check reports each cache config error with file, key path, exit 1, no stack', async (t) => {
  for (const c of cases) {
    const dir = configDir(t)
    const file = writeConfig(dir, c.source)
    const run = await runCli(['check', '--config', file])
    t.equal(run.code, 1, `${c.rule}: exit code 1`)
    t.match(run.stderr, c.expect, `${c.rule}: message`)
    t.ok(run.stderr.includes(file), `${c.rule}: names the file`)
    t.notMatch(run.stderr, /\n\s+at .+:\d+:\d+/, `${c.rule}: no stack trace`)
  }
})

t.test('proxyctl explain shows the cache: zone, store, the key this request gets, lookup or bypass or not cached', async (t) => {
  const dir = configDir(t)
  const file = writeConfig(dir, `${head}export default defineConfig({ caches: { main: {} }, servers: [{ listen: '127.0.0.1:8080', locations: { '/': proxy('http://127.0.0.1:9', { cache: { zone: 'main', bypass: ['$http_x_bypass'] } }) } }] })\n`)
  const table: Array<[string[], Record<string, unknown>]> = [
    [['http://127.0.0.1:8080/a?b=1'], { zone: 'main', store: 'memory', key: 'http127.0.0.1:9/a?b=1', lookup: 'looked up: a fresh entry answers without the upstream (HIT)' }],
    [['-H', 'X-Bypass: 1', 'http://127.0.0.1:8080/a'], { zone: 'main', store: 'memory', key: 'http127.0.0.1:9/a', lookup: 'bypass: no lookup (BYPASS); the answer may be stored' }],
    [['POST', 'http://127.0.0.1:8080/a'], { zone: 'main', store: 'memory', key: 'http127.0.0.1:9/a', lookup: 'not cached: POST is not in methods' }]
  ]
  for (const [args, cache] of table) {
    const run = await runCli(['explain', '-c', file, '--json', ...args])
    t.equal(run.code, 0, `${args.join(' ')}: exit 0 ${run.stderr}`)
    t.same((JSON.parse(run.stdout) as { handler: { cache: unknown } }).handler.cache, cache, `${args.join(' ')}: the cache`)
  }
})
