// Micro-benchmark of selection alone (no network): the 500-location, 50-server-name worst case of
// the bench (every regex location missed, the last regex server name matched) against one location.
// Run: pnpm build && node bench/micro/selection.mjs
import { LocationTree, parseLocationKey, ServerSelector } from '../../packages/core/dist/internal.js'
const pad = (i) => String(i).padStart(3, '0')
const keys = ['/tcp/']
for (let i = 0; i < 299; i++) keys.push(i % 3 === 0 ? `/t${pad(i)}/` : `/p${pad(i)}/app/`)
for (let i = 0; i < 100; i++) keys.push(`= /e${pad(i)}`)
for (let i = 0; i < 50; i++) keys.push(`~ ^/r${pad(i)}/.*\\.php$`)
for (let i = 50; i < 100; i++) keys.push(`~* \\.(x${pad(i)}|y${pad(i)})$`)
const nodes = keys.map(k => ({ ...parseLocationKey(k), children: [], key: k }))
const tree = new LocationTree(nodes)
const entries = []
for (let i = 0; i < 20; i++) entries.push({ server: i, names: [`host${i}.bench.test`] })
for (let i = 0; i < 10; i++) entries.push({ server: 20 + i, names: [`*.w${i}.bench.test`] })
for (let i = 0; i < 10; i++) entries.push({ server: 30 + i, names: [`www.t${i}.*`] })
for (let i = 0; i < 9; i++) entries.push({ server: 40 + i, names: [`~^r${i}-\\d+\\.bench\\.test$`] })
entries.push({ server: 49, names: ['~^r49\\.bench\\.test$'] })
const sel = new ServerSelector(entries, 0)
const one = new LocationTree([{ ...parseLocationKey('/tcp/'), children: [] }])
function bench (name, fn) { for (let i = 0; i < 2e5; i++) fn(); const t = process.hrtime.bigint(); const N = 1e6; for (let i = 0; i < N; i++) fn(); console.log(name, (Number(process.hrtime.bigint() - t) / N).toFixed(0), 'ns') }
console.log(tree.match('/tcp/small').location.key, sel.select('r49.bench.test').server)
bench('500 locations', () => tree.match('/tcp/small'))
bench('1 location', () => one.match('/tcp/small'))
bench('50 server names', () => sel.select('r49.bench.test'))
// A host never seen before walks every wildcard and regex name (none matches here): what each
// request would pay without ServerSelector's cache of walked hosts.
const fresh = Array.from({ length: 1.2e6 }, (_, i) => `r49x${i}.bench.test`)
let next = 0
bench('50 server names, a new host each time', () => sel.select(fresh[next++]))
